#!/usr/bin/env bash
# DatasetPromotion on the local control plane, as a user drives it with
# kubectl. The catalog documents of every dataset version are written by the
# publishers' own libraries (pystac, prov, rdflib: test/fixtures/dataset/
# generate.py --version); the artifacts are real files (one of them a 1 GiB
# sparse file); hack/bundleserver serves them on loopback, with its error
# answers (/status/), slow (/slow/) transfers. They are served over HTTPS with
# a certificate of a test CA, which every promotion trusts through
# spec.caSecretRef (a project extension: API.md gives DatasetPromotion no CA
# field); one promotion is served over plain HTTP.
# Cases: TLS without spec.caSecretRef, with a CA that did not sign the
# server's certificate, and with a caSecretRef whose Secret is missing (each
# blocked, nothing fetched); a promotion over plain HTTP; a promotion whose sources ask for the bearer token of
# spec.sourceAuthSecretRef, with and without it; a good promotion reaching Promoted with its index entry and a receipt
# that `membrane receipt verify` accepts; each gate failing alone (wrong
# digest, wrong size, an unknown license, DCAT/STAC licenses that differ, a
# wrong DCAT identifier, a DCAT distribution URL not among the artifacts, a
# STAC asset outside them, PROV without the version's entity, a dead STAC
# link); an artifact behind redirects; a transfer cut short and a document
# answering 500 (transient: Reconciling, retried); a server down and then up (Blocked with Reconciling, then Promoted,
# no operator restart); 20 promotions of different datasets into one index at
# once, no entry lost; a later version replacing an earlier one; revoke and
# deletion; a 1 GiB artifact showing status.progress while another promotion
# completes meanwhile. The promotions of all cases are applied at once, each
# area in its own namespace, and then each outcome is waited for.
source "$(dirname "$0")/lib.sh"

# a copy: the cache keeps one build of each helper, and a build of another source replaces it
cp "$(bash "$E2E_ROOT/hack/gotool.sh" bundleserver)" "$E2E_DIR/bundleserver"
BUNDLESERVER=$E2E_DIR/bundleserver
PY=$(bash "$E2E_ROOT/hack/python.sh")

digest_of() { printf 'sha256:%s' "$(sha256sum < "$1" | cut -c1-64)"; }

# a test CA and the server's certificate it signs; another CA that signs nothing of this server
pki="$E2E_DIR/pki"
test_ca "$pki" ca
test_ca "$pki" other-ca
test_server_cert "$pki" server ca

srv="$E2E_DIR/srv"     # the main server's files
late="$E2E_DIR/late"   # the files of a server that starts only later
mkdir -p "$srv/licenses" "$late/licenses" "$srv/private/licenses"
printf '<html>CC-BY-4.0</html>\n' > "$srv/licenses/CC-BY-4.0.html"
cp "$srv/licenses/CC-BY-4.0.html" "$late/licenses/"
cp "$srv/licenses/CC-BY-4.0.html" "$srv/private/licenses/"
PORT=$(free_port)
HTTP_PORT=$(free_port)
LATE_PORT=$(free_port)
BASE="https://127.0.0.1:$PORT"      # the main path: TLS, the test CA trusted through spec.caSecretRef
# Under AddressSanitizer, freed blocks wait in a quarantine (256 MiB by default) before reuse, and every TLS
# record's buffers pass through it: the bound on the operator's peak memory below is about membrane's own
# buffers (the 1 GiB artifact streamed, never held), so the quarantine is kept small for this operator.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8"
PLAIN="http://127.0.0.1:$HTTP_PORT" # the same files over plain HTTP
LATE="https://127.0.0.1:$LATE_PORT"

# version ROOT BASE ID VERSION LICENSE [ARTIFACT_NAME ...]: artifact files under
# ROOT/store/ID/VERSION/ (small, distinct), then the documents of that version
# under ROOT/catalog/ID/ as generate.py writes them
version() {
  local root=$1 base=$2 id=$3 ver=$4 lic=$5; shift 5
  local names=("$@") arts="" n
  [ ${#names[@]} -gt 0 ] || names=(data.csv)
  mkdir -p "$root/store/$id/$ver" "$root/catalog/$id"
  for n in "${names[@]}"; do
    [ -f "$root/store/$id/$ver/$n" ] || printf 'id,value\n%s,%s,%s\n' "$id" "$ver" "$n" > "$root/store/$id/$ver/$n"
    arts+="${arts:+,}{\"name\":\"$n\",\"url\":\"$base/store/$id/$ver/$n\",\"digest\":\"$(digest_of "$root/store/$id/$ver/$n")\",\"mediaType\":\"text/csv\"}"
  done
  printf '{"store":"%s","datasetID":"%s","versionID":"%s","license":"%s","licenseLink":"%s/licenses/CC-BY-4.0.html","artifacts":[%s]}\n' \
    "$base" "$id" "$ver" "$lic" "$base" "$arts" > "$root/catalog/$id/config.json"
  "$PY" "$E2E_ROOT/test/fixtures/dataset/generate.py" --version "$root/catalog/$id/config.json" "$root/catalog/$id"
}

# dp NS NAME ID VERSION LICENSE BASE [artifacts YAML lines]: a DatasetPromotion of the
# version's documents; its artifacts are the generated ones unless given. It trusts the
# test CA (the Secret store-ca of its namespace) unless DP_CA says otherwise ("" for none).
CA_REF="  caSecretRef: {name: store-ca, key: ca.crt}"
dp() {
  local ns=$1 name=$2 id=$3 ver=$4 lic=$5 base=$6 arts=${7:-} root=$srv
  [ "$base" = "$LATE" ] && root=$late
  [ "$base" = "$BASE/private" ] && root=$srv/private
  if [ -z "$arts" ]; then
    arts=$(python3 -c '
import json, sys
for a in json.load(open(sys.argv[1]))["artifacts"]:
    print("    - {name: %s, url: \"%s\", digest: \"%s\", mediaType: %s}" % (a["name"], a["url"], a["digest"], a["mediaType"]))' \
      "$root/catalog/$id/config.json")
  fi
  kubectl apply -f - >/dev/null <<EOF
apiVersion: governance.kfm.dev/v1alpha1
kind: DatasetPromotion
metadata: {name: $name, namespace: $ns}
spec:
  datasetID: "$id"
  versionID: "$ver"
  license: "$lic"
  policyLabel: public
  artifacts:
$arts
  catalog:
    dcat: {url: "$base/catalog/$id/dcat.jsonld"}
    stac: {url: "$base/catalog/$id/collection.json"}
    prov: {url: "$base/catalog/$id/prov.json"}
${DP_CA-$CA_REF}
${DP_EXTRA:-}
EOF
}

# edit FILE PYTHON: the JSON document FILE changed by a Python statement on d
edit() {
  python3 - "$1" "$2" <<'PY'
import json, sys
path, stmt = sys.argv[1], sys.argv[2]
d = json.load(open(path))
exec(stmt)
json.dump(d, open(path, "w"))
PY
}

say "the fixtures: documents written by pystac, prov and rdflib, artifacts, a 1 GiB sparse file"
version "$srv" "$BASE" kfm.e2e.good 2026-03-01.1 CC-BY-4.0 wells.csv wells.parquet
for c in digest size license mismatch dcatid dcaturl stacasset prov link revoke delete; do
  version "$srv" "$BASE" "kfm.e2e.$c" 1 CC-BY-4.0
done
version "$srv" "$BASE" kfm.e2e.license 1 Made-Up-License-1.0
# TLS: no CA, another CA, a CA Secret that is not there; and the same files over plain HTTP
for c in noca wrongca missingca; do version "$srv" "$BASE" "kfm.e2e.$c" 1 CC-BY-4.0; done
version "$srv" "$PLAIN" kfm.e2e.plain 1 CC-BY-4.0
# each gate failing alone: one document (or the spec, below) spoilt per case
edit "$srv/catalog/kfm.e2e.mismatch/collection.json" 'd["license"] = "MIT"'
edit "$srv/catalog/kfm.e2e.dcatid/dcat.jsonld" \
  'for n in d["@graph"]: n.update({"dct:identifier": "kfm.e2e.other"}) if "dct:identifier" in n else None'
edit "$srv/catalog/kfm.e2e.dcaturl/dcat.jsonld" \
  'for n in d["@graph"]: n.update({"dcat:downloadURL": {"@id": "'"$BASE"'/store/elsewhere/x.csv"}}) if "dcat:downloadURL" in n else None'
edit "$srv/catalog/kfm.e2e.stacasset/collection.json" 'd["assets"]["data.csv"]["href"] = "'"$BASE"'/store/elsewhere/x.csv"'
edit "$srv/catalog/kfm.e2e.prov/prov.json" \
  'd["entity"] = {k: dict(v, **{"kfm:dataset_version_id": "0"}) for k, v in d["entity"].items()}'
edit "$srv/catalog/kfm.e2e.link/collection.json" \
  'd["links"] = [dict(l, href="'"$BASE"'/status/404/gone") if l["rel"] == "license" else l for l in d["links"]]'
# behind a bearer token (the server asks for it under /private/)
version "$srv/private" "$BASE/private" kfm.e2e.token 1 CC-BY-4.0
version "$srv/private" "$BASE/private" kfm.e2e.notoken 1 CC-BY-4.0
# an artifact behind a chain of two redirects, one cut short, a document answering 500
for c in redirect cut flaky; do version "$srv" "$BASE" "kfm.e2e.$c" 1 CC-BY-4.0; done
regen() { # ID PYTHON: the version's config changed by a Python statement on c, its documents written again
  python3 - "$srv/catalog/$1/config.json" "$2" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
exec(sys.argv[2])
json.dump(c, open(sys.argv[1], "w"))
PY
  "$PY" "$E2E_ROOT/test/fixtures/dataset/generate.py" --version "$srv/catalog/$1/config.json" "$srv/catalog/$1"
}
regen kfm.e2e.redirect 'c["artifacts"][0]["url"] = c["artifacts"][0]["url"].replace("/store/", "/redirect/2/store/")'
regen kfm.e2e.cut 'c["artifacts"][0]["url"] = c["artifacts"][0]["url"].replace("/store/", "/cut/5/store/")'
# a server that is down when the promotion starts
version "$late" "$LATE" kfm.e2e.late 1 CC-BY-4.0
# 20 datasets into one index
for i in $(seq -w 1 20); do version "$srv" "$BASE" "kfm.e2e.many$i" 1 CC-BY-4.0; done
# two versions of one dataset: the second replaces the first
version "$srv" "$BASE" kfm.e2e.versions v1 CC-BY-4.0
cp -r "$srv/catalog/kfm.e2e.versions" "$E2E_DIR/versions-v1"
# the large artifact: 1 GiB of zeros on disk as a sparse file, sent at 32 MiB/s
version "$srv" "$BASE" kfm.e2e.big 1 CC-BY-4.0 small.csv
truncate -s 1G "$srv/store/kfm.e2e.big/1/big.bin"
BIG_DIGEST="sha256:$(head -c 1073741824 /dev/zero | sha256sum | cut -c1-64)"
python3 - "$srv/catalog/kfm.e2e.big/config.json" "$BASE" "$BIG_DIGEST" <<'PY'
import json, sys
path, base, digest = sys.argv[1:]
c = json.load(open(path))
c["artifacts"].append({"name": "big.bin", "url": f"{base}/slow/32768/store/kfm.e2e.big/1/big.bin",
                       "digest": digest, "mediaType": "application/octet-stream"})
json.dump(c, open(path, "w"))
PY
"$PY" "$E2E_ROOT/test/fixtures/dataset/generate.py" --version "$srv/catalog/kfm.e2e.big/config.json" "$srv/catalog/kfm.e2e.big"
version "$srv" "$BASE" kfm.e2e.meanwhile 1 CC-BY-4.0

TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
e2e_secret "$TOKEN"
"$BUNDLESERVER" -dir "$srv" -cert "$pki/server.crt" -key "$pki/server.key" -listen "127.0.0.1:$PORT" \
  -http "127.0.0.1:$HTTP_PORT" -token "$TOKEN" -token-path /private/ >"$E2E_DIR/server.out" 2>"$E2E_DIR/server.log" &
E2E_PIDS+=($!)
eventually 10 grep -q listening "$E2E_DIR/server.out" || { cat "$E2E_DIR/server.log"; exit 1; }

install_operator_rbac
operator_start

ns_gates=$(new_namespace dp-gates); ns_many=$(new_namespace dp-many); ns_big=$(new_namespace dp-big)
ns_life=$(new_namespace dp-life)
for ns in "$ns_gates" "$ns_many" "$ns_big" "$ns_life"; do
  kubectl -n "$ns" create secret generic store-ca --from-file=ca.crt="$pki/ca.crt" >/dev/null
done
kubectl -n "$ns_gates" create secret generic other-ca --from-file=ca.crt="$pki/other-ca.crt" >/dev/null

# the spec's own faults: a wrong digest, a wrong size
good_art() { # ID NAME
  printf '    - {name: %s, url: "%s/store/%s/1/%s", digest: "%s"' "$2" "$BASE" "$1" "$2" "$(digest_of "$srv/store/$1/1/$2")"
}

say "every case is applied at once"
dp "$ns_gates" good kfm.e2e.good 2026-03-01.1 CC-BY-4.0 "$BASE"
dp "$ns_gates" digest kfm.e2e.digest 1 CC-BY-4.0 "$BASE" \
  "    - {name: data.csv, url: \"$BASE/store/kfm.e2e.digest/1/data.csv\", digest: \"$(digest wrong)\"}"
dp "$ns_gates" size kfm.e2e.size 1 CC-BY-4.0 "$BASE" "$(good_art kfm.e2e.size data.csv), sizeBytes: 3}"
dp "$ns_gates" license kfm.e2e.license 1 Made-Up-License-1.0 "$BASE"
dp "$ns_gates" mismatch kfm.e2e.mismatch 1 CC-BY-4.0 "$BASE"
dp "$ns_gates" dcatid kfm.e2e.dcatid 1 CC-BY-4.0 "$BASE"
dp "$ns_gates" dcaturl kfm.e2e.dcaturl 1 CC-BY-4.0 "$BASE"
dp "$ns_gates" stacasset kfm.e2e.stacasset 1 CC-BY-4.0 "$BASE"
dp "$ns_gates" prov kfm.e2e.prov 1 CC-BY-4.0 "$BASE"
dp "$ns_gates" link kfm.e2e.link 1 CC-BY-4.0 "$BASE"
DP_CA="" dp "$ns_gates" noca kfm.e2e.noca 1 CC-BY-4.0 "$BASE"
DP_CA="  caSecretRef: {name: other-ca, key: ca.crt}" dp "$ns_gates" wrongca kfm.e2e.wrongca 1 CC-BY-4.0 "$BASE"
DP_CA="  caSecretRef: {name: no-such-ca, key: ca.crt}" dp "$ns_gates" missingca kfm.e2e.missingca 1 CC-BY-4.0 "$BASE"
DP_CA="" dp "$ns_gates" plain kfm.e2e.plain 1 CC-BY-4.0 "$PLAIN"
dp "$ns_gates" late kfm.e2e.late 1 CC-BY-4.0 "$LATE"
dp "$ns_gates" redirect kfm.e2e.redirect 1 CC-BY-4.0 "$BASE"
dp "$ns_gates" cut kfm.e2e.cut 1 CC-BY-4.0 "$BASE"
DP_EXTRA="" dp "$ns_gates" flaky kfm.e2e.flaky 1 CC-BY-4.0 "$BASE"
kubectl -n "$ns_gates" patch dp flaky --type merge -p "{\"spec\":{\"catalog\":{\"prov\":{\"url\":\"$BASE/status/500/prov.json\"}}}}" >/dev/null
kubectl -n "$ns_gates" create secret generic store-token --from-literal=token="$TOKEN" >/dev/null
DP_EXTRA="  sourceAuthSecretRef: {name: store-token, key: token}" dp "$ns_gates" token kfm.e2e.token 1 CC-BY-4.0 "$BASE/private"
dp "$ns_gates" notoken kfm.e2e.notoken 1 CC-BY-4.0 "$BASE/private"
for i in $(seq -w 1 20); do dp "$ns_many" "many$i" "kfm.e2e.many$i" 1 CC-BY-4.0 "$BASE"; done
dp "$ns_life" revoke kfm.e2e.revoke 1 CC-BY-4.0 "$BASE"
dp "$ns_life" delete kfm.e2e.delete 1 CC-BY-4.0 "$BASE"
dp "$ns_life" versions-v1 kfm.e2e.versions v1 CC-BY-4.0 "$BASE"
dp "$ns_big" big kfm.e2e.big 1 CC-BY-4.0 "$BASE"

cond() { # ns name type: "status reason"
  jp "$1" "dp/$2" "{.status.conditions[?(@.type==\"$3\")].status} {.status.conditions[?(@.type==\"$3\")].reason}"
}
entry() { # ns id: the index entry of id
  kubectl -n "$1" get configmap kfm-published-datasets -o json | python3 -c '
import json, sys
print(json.load(sys.stdin).get("data", {}).get(sys.argv[1], ""))' "$2"
}
promoted() { # ns name id
  check "$2: Promoted" eventually 120 equals Promoted jp "$1" "dp/$2" '{.status.phase}'
  check "$2: Ready=True, GatesPassed=True, Published=True" equals "True Promoted|True AllPassed|True Published" bash -c \
    "echo \"\$(kubectl -n $1 get dp $2 -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status} {.status.conditions[?(@.type==\"Ready\")].reason}|{.status.conditions[?(@.type==\"GatesPassed\")].status} {.status.conditions[?(@.type==\"GatesPassed\")].reason}|{.status.conditions[?(@.type==\"Published\")].status} {.status.conditions[?(@.type==\"Published\")].reason}')\""
  check "$2: the index entry of $3 is sealed by its receipt" bash -c \
    "test \"\$(kubectl -n $1 get configmap kfm-published-datasets -o json | python3 -c 'import json,sys; print(json.loads(json.load(sys.stdin)[\"data\"][\"$3\"])[\"auditRef\"])')\" = \"\$(kubectl -n $1 get dp $2 -o jsonpath='{.status.receipt.auditRef}')\""
}
blocked() { # ns name reason gate needle
  check "$2: Blocked, Stalled=True $3" eventually 90 equals "Blocked True $3" bash -c \
    "echo \"\$(kubectl -n $1 get dp $2 -o jsonpath='{.status.phase} {.status.conditions[?(@.type==\"Stalled\")].status} {.status.conditions[?(@.type==\"Stalled\")].reason}')\""
  check "$2: gate $4 failed, alone, its message names \"$5\"" bash -c \
    "kubectl -n $1 get dp $2 -o json | python3 -c '
import json, sys
g = json.load(sys.stdin)[\"status\"][\"gates\"]
failed = [x[\"name\"] for x in g if not x[\"passed\"]]
assert [x[\"name\"] for x in g] == [\"checksums\", \"license\", \"policy-label\", \"catalog-dcat\", \"catalog-stac\", \"catalog-prov\", \"links\"], g
assert failed == [\"$4\"], failed
m = [x for x in g if x[\"name\"] == \"$4\"][0][\"message\"]
assert \"$5\" in m, m
'"
  check "$2: not in the index" equals "" entry "$1" "${6:-none}"
  check "$2: a Warning Event $3" eventually 30 has_event "$1" "$2" "$3"
}

say "the 1 GiB artifact shows its progress while another promotion completes"
check "big: Validating, with status.progress bytesHashed > 0 of bytesTotal" eventually 60 bash -c \
  "test \"\$(kubectl -n $ns_big get dp big -o jsonpath='{.status.phase}')\" = Validating &&
   test \"\$(kubectl -n $ns_big get dp big -o jsonpath='{.status.progress.bytesHashed}')\" -gt 0"
dp "$ns_big" meanwhile kfm.e2e.meanwhile 1 CC-BY-4.0 "$BASE"
promoted "$ns_big" meanwhile kfm.e2e.meanwhile
check "big: still Validating while meanwhile was promoted, its progress below 1 GiB" bash -c \
  "test \"\$(kubectl -n $ns_big get dp big -o jsonpath='{.status.phase}')\" = Validating &&
   test \"\$(kubectl -n $ns_big get dp big -o jsonpath='{.status.progress.bytesHashed}')\" -lt 1073741824"
check "big: the progress moves" bash -c "
  a=\$(kubectl -n $ns_big get dp big -o jsonpath='{.status.progress.bytesHashed}')
  for i in \$(seq 1 30); do sleep 1
    b=\$(kubectl -n $ns_big get dp big -o jsonpath='{.status.progress.bytesHashed}')
    [ -n \"\$b\" ] && [ \"\$b\" -gt \"\$a\" ] && exit 0
  done; exit 1"

say "a good promotion"
promoted "$ns_gates" good kfm.e2e.good
check "good: seven gates passed, in order" equals "checksums:true license:true policy-label:true catalog-dcat:true catalog-stac:true catalog-prov:true links:true " \
  jp "$ns_gates" dp/good '{range .status.gates[*]}{.name}:{.passed} {end}' 
check "good: the entry names the version, label, license and catalog" bash -c \
  "kubectl -n $ns_gates get configmap kfm-published-datasets -o json | python3 -c '
import json, sys
e = json.loads(json.load(sys.stdin)[\"data\"][\"kfm.e2e.good\"])
assert e[\"versionID\"] == \"2026-03-01.1\" and e[\"policyLabel\"] == \"public\" and e[\"license\"] == \"CC-BY-4.0\", e
assert e[\"catalog\"][\"dcat\"] == \"$BASE/catalog/kfm.e2e.good/dcat.jsonld\", e
'"
check "good: the index ConfigMap is labelled app.kubernetes.io/managed-by=membrane" equals membrane \
  jp "$ns_gates" configmap/kfm-published-datasets '{.metadata.labels.app\.kubernetes\.io/managed-by}'
check "good: the receipt seals both artifacts' digests" equals 2 bash -c \
  "kubectl -n $ns_gates get dp good -o json | python3 -c 'import json,sys; r=json.load(sys.stdin)[\"status\"][\"receipt\"]; print(len(r[\"artifacts\"]))'"
kubectl -n "$ns_gates" get dp good -o json > "$E2E_DIR/good.json"
check "good: membrane receipt verify accepts it" "$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/good.json"
check "good: the finalizer governance.kfm.dev/published-index" equals governance.kfm.dev/published-index \
  jp "$ns_gates" dp/good '{.metadata.finalizers[0]}'
check "good: a Normal Event Promoted" eventually 30 has_event "$ns_gates" good Promoted

say "each gate failing alone"
blocked "$ns_gates" digest ChecksumsFailed checksums "digest" kfm.e2e.digest
blocked "$ns_gates" size ChecksumsFailed checksums "sizeBytes" kfm.e2e.size
blocked "$ns_gates" license LicenseFailed license "spec.license" kfm.e2e.license
blocked "$ns_gates" mismatch LicenseFailed license "MIT" kfm.e2e.mismatch
blocked "$ns_gates" dcatid CatalogDCATFailed catalog-dcat "kfm.e2e.other" kfm.e2e.dcatid
blocked "$ns_gates" dcaturl CatalogDCATFailed catalog-dcat "/store/elsewhere/x.csv" kfm.e2e.dcaturl
blocked "$ns_gates" stacasset CatalogSTACFailed catalog-stac "/store/elsewhere/x.csv" kfm.e2e.stacasset
blocked "$ns_gates" prov CatalogPROVFailed catalog-prov "kfm:dataset_version_id" kfm.e2e.prov
blocked "$ns_gates" link LinksFailed links "/status/404/gone" kfm.e2e.link

say "the bearer token of spec.sourceAuthSecretRef goes with every URL"
promoted "$ns_gates" token kfm.e2e.token
check "token: the server saw the artifact, the three documents and the links with the token" bash -c \
  "grep -c 'https \(GET\|HEAD\) /private/.* -> 200' $E2E_DIR/server.log | awk '{exit !(\$1 >= 7)}'"
check "notoken: without it, Blocked ChecksumsFailed naming HTTP 401" eventually 60 equals "Blocked ChecksumsFailed" bash -c \
  "echo \"\$(kubectl -n $ns_gates get dp notoken -o jsonpath='{.status.phase} {.status.conditions[?(@.type==\"Stalled\")].reason}')\""
check "notoken: the checksums gate's message names HTTP 401" bash -c \
  "kubectl -n $ns_gates get dp notoken -o jsonpath='{.status.gates[0].message}' | grep -q 'HTTP 401'"

say "TLS: the test CA of spec.caSecretRef is trusted; without it, or with another CA, nothing is fetched"
check "good: its artifacts, documents and links came over https" bash -c \
  "grep -q '^.*https GET /store/kfm.e2e.good/' $E2E_DIR/server.log && ! grep -q ' http [A-Z]* .*kfm.e2e.good/' $E2E_DIR/server.log"
tls_refused() { # name
  check "$1: Blocked, never Promoted, the checksums gate failed with a TLS verification message" eventually 60 bash -c \
    "kubectl -n $ns_gates get dp $1 -o json | python3 -c '
import json, sys
s = json.load(sys.stdin)[\"status\"]
assert s[\"phase\"] == \"Blocked\", s[\"phase\"]
g = s[\"gates\"][0]
assert g[\"name\"] == \"checksums\" and not g[\"passed\"], g
assert \"certificate\" in g[\"message\"], g[\"message\"]
'"
  check "$1: not in the index" equals "" entry "$ns_gates" "kfm.e2e.$1"
  check "$1: the server answered no request for it" bash -c "! grep -q 'kfm.e2e.$1/.* -> ' $E2E_DIR/server.log"
}
tls_refused noca
tls_refused wrongca
check "missingca: Blocked, Reconciling=True SourceUnavailable, the message naming spec.caSecretRef and the Secret" \
  eventually 60 bash -c "test \"\$(kubectl -n $ns_gates get dp missingca -o jsonpath='{.status.phase} {.status.conditions[?(@.type==\"Reconciling\")].reason}')\" = 'Blocked SourceUnavailable' &&
  kubectl -n $ns_gates get dp missingca -o jsonpath='{.status.conditions[?(@.type==\"Reconciling\")].message}' | grep -q 'spec.caSecretRef.*no-such-ca'"
check "missingca: not in the index" equals "" entry "$ns_gates" kfm.e2e.missingca
promoted "$ns_gates" plain kfm.e2e.plain
check "plain: its artifact came over plain HTTP" grep -q ' http GET /store/kfm.e2e.plain/' "$E2E_DIR/server.log"

say "redirects are followed; a cut transfer and a 500 are transient"
promoted "$ns_gates" redirect kfm.e2e.redirect
transient() { # name needle
  check "$1: Blocked, Reconciling=True SourceUnavailable, not Stalled" eventually 60 equals "Blocked True SourceUnavailable" bash -c \
    "echo \"\$(kubectl -n $ns_gates get dp $1 -o jsonpath='{.status.phase} {.status.conditions[?(@.type==\"Reconciling\")].status} {.status.conditions[?(@.type==\"Reconciling\")].reason}{.status.conditions[?(@.type==\"Stalled\")].status}')\""
  check "$1: the Reconciling message names \"$2\"" bash -c \
    "kubectl -n $ns_gates get dp $1 -o jsonpath='{.status.conditions[?(@.type==\"Reconciling\")].message}' | grep -qF '$2'"
}
transient cut "/cut/5/store/kfm.e2e.cut/1/data.csv"
transient flaky "HTTP 500"

say "a server down, then up: Blocked with Reconciling, then Promoted without a restart"
check "late: Blocked, Reconciling=True SourceUnavailable, not Stalled" eventually 60 equals "Blocked True SourceUnavailable" bash -c \
  "echo \"\$(kubectl -n $ns_gates get dp late -o jsonpath='{.status.phase} {.status.conditions[?(@.type==\"Reconciling\")].status} {.status.conditions[?(@.type==\"Reconciling\")].reason}{.status.conditions[?(@.type==\"Stalled\")].status}')\""
check "late: a Warning Event SourceUnavailable" eventually 30 has_event "$ns_gates" late SourceUnavailable
"$BUNDLESERVER" -dir "$late" -cert "$pki/server.crt" -key "$pki/server.key" -listen "127.0.0.1:$LATE_PORT" \
  >"$E2E_DIR/late.out" 2>"$E2E_DIR/late.log" &
E2E_PIDS+=($!)
promoted "$ns_gates" late kfm.e2e.late

say "20 promotions of different datasets into one index at once"
check "all 20 Promoted" eventually 180 equals 20 bash -c \
  "kubectl -n $ns_many get dp -o jsonpath='{range .items[*]}{.status.phase}{\"\\n\"}{end}' | grep -c '^Promoted\$'"
check "the index holds 20 entries, each sealed by its promotion's receipt" equals 20 bash -c \
  "kubectl -n $ns_many get dp -o json > $E2E_DIR/many.json; kubectl -n $ns_many get configmap kfm-published-datasets -o json | python3 -c '
import json, sys
data = json.load(sys.stdin)[\"data\"]
dps = json.load(open(\"$E2E_DIR/many.json\"))[\"items\"]
ok = sum(json.loads(data[p[\"spec\"][\"datasetID\"]])[\"auditRef\"] == p[\"status\"][\"receipt\"][\"auditRef\"] for p in dps)
print(ok)'"

say "a later version replaces the earlier one, and its receipt names it"
promoted "$ns_life" versions-v1 kfm.e2e.versions
V1_ENTRY=$(entry "$ns_life" kfm.e2e.versions)
version "$srv" "$BASE" kfm.e2e.versions v2 CC-BY-4.0
dp "$ns_life" versions-v2 kfm.e2e.versions v2 CC-BY-4.0 "$BASE"
promoted "$ns_life" versions-v2 kfm.e2e.versions
check "versions-v2: the receipt's replacedEntry is v1's entry" equals "$V1_ENTRY" jp "$ns_life" dp/versions-v2 '{.status.receipt.replacedEntry}'
kubectl -n "$ns_life" get dp versions-v2 -o json > "$E2E_DIR/versions-v2.json"
check "versions-v2: membrane receipt verify accepts the receipt that names the replaced entry" \
  "$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/versions-v2.json"
check "versions-v1: still Promoted, Published=False Superseded" eventually 60 equals "Promoted False Superseded" bash -c \
  "echo \"\$(kubectl -n $ns_life get dp versions-v1 -o jsonpath='{.status.phase} {.status.conditions[?(@.type==\"Published\")].status} {.status.conditions[?(@.type==\"Published\")].reason}')\""

say "revoke and deletion"
promoted "$ns_life" revoke kfm.e2e.revoke
promoted "$ns_life" delete kfm.e2e.delete
PROMOTED_REF=$(jp "$ns_life" dp/revoke '{.status.receipt.auditRef}')
kubectl -n "$ns_life" patch dp revoke --type merge -p '{"spec":{"revoke":true}}' >/dev/null
check "revoke: Revoked" eventually 60 equals Revoked jp "$ns_life" dp/revoke '{.status.phase}'
check "revoke: its entry is gone from the index" equals "" entry "$ns_life" kfm.e2e.revoke
check "revoke: the Revoked receipt chains to the Promoted one and names the removed entry" equals "Revoked $PROMOTED_REF yes" bash -c \
  "kubectl -n $ns_life get dp revoke -o json | python3 -c 'import json,sys; r=json.load(sys.stdin)[\"status\"][\"receipt\"]; print(r[\"outcome\"], r[\"prevAuditRef\"], \"yes\" if \"$PROMOTED_REF\" in r.get(\"removedEntry\", \"\") else \"no\")'"
kubectl -n "$ns_life" get dp revoke -o json > "$E2E_DIR/revoke.json"
check "revoke: membrane receipt verify accepts the chain" "$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/revoke.json"
check "the other entries stay" bash -c "test -n \"\$(kubectl -n $ns_life get configmap kfm-published-datasets -o jsonpath='{.data.kfm\\.e2e\\.delete}')\""
kubectl -n "$ns_life" delete dp delete --wait=false >/dev/null
check "delete: the object goes (its finalizer removed)" kubectl -n "$ns_life" wait --for=delete dp/delete --timeout=60s
check "delete: its entry is gone from the index" equals "" entry "$ns_life" kfm.e2e.delete
check "the later version's entry stays" test -n "$(entry "$ns_life" kfm.e2e.versions)"

say "the 1 GiB artifact completes"
promoted "$ns_big" big kfm.e2e.big
check "big: the progress is gone once checksums ended" equals "" jp "$ns_big" dp/big '{.status.progress}'
peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$E2E_OPERATOR_PID/status"; }
echo "     the operator's peak resident memory: $(peak_rss_kib) KiB"
check "big: the 1 GiB was streamed, never held: the operator's peak resident memory stays under 512 MiB" \
  test "$(peak_rss_kib)" -lt 524288
check "big: the receipt seals 1073741824 bytes of big.bin" equals 1073741824 bash -c \
  "kubectl -n $ns_big get dp big -o json | python3 -c 'import json,sys; print([a for a in json.load(sys.stdin)[\"status\"][\"receipt\"][\"artifacts\"] if a[\"name\"]==\"big.bin\"][0][\"sizeBytes\"])'"

say "metrics"
promotions_at_least() { # outcome N
  local v
  v=$(operator_metric main "membrane_promotions_total{outcome=\"$1\"}") || { echo "no membrane_promotions_total{outcome=\"$1\"}"; return 1; }
  [ "${v%.*}" -ge "$2" ] || { echo "membrane_promotions_total{outcome=\"$1\"} is $v, less than $2"; return 1; }
}
check "membrane_promotions_total{outcome=\"Promoted\"} counts the 31 promotions" promotions_at_least Promoted 31
check "membrane_promotions_total{outcome=\"Blocked\"} counts the 14 blocked ones" promotions_at_least Blocked 14
check "membrane_promotions_total{outcome=\"Revoked\"} counts the revocation" equals 1 operator_metric main 'membrane_promotions_total{outcome="Revoked"}'

check "a receipt log line names the good promotion's auditRef" grep -q "\"audit_ref\":\"$(jp "$ns_gates" dp/good '{.status.receipt.auditRef}')\"" "$(operator_log main)"

say "the namespaces go: every promotion's finalizer is removed"
for ns in "$ns_gates" "$ns_many" "$ns_big" "$ns_life"; do kubectl delete namespace "$ns" --wait=false >/dev/null; done
check "the four namespaces are gone" kubectl wait --for=delete namespace/"$ns_gates" namespace/"$ns_many" \
  namespace/"$ns_big" namespace/"$ns_life" --timeout=120s

check "the operator is still running" kill -0 "$E2E_OPERATOR_PID"
check "SIGTERM: clean exit 0" operator_stop
