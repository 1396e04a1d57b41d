#!/usr/bin/env bash
# PolicyBundle on the local control plane with a real OPA, as a user drives it
# with kubectl. The bundles are made by `opa build` (hack/opa.sh builds it),
# signed ones with keys made by openssl; only the malformed ones (not gzip, no
# .manifest, a path-traversal entry, a file changed after signing) are made
# here with tar and Python's tarfile. hack/bundleserver serves them on loopback
# over HTTPS with a test CA, a bearer token under /private/, redirect chains
# and an https-to-http redirect; decision tests run against `opa run --server`.
# Cases: a good bundle published (the ConfigMap's bytes, digest, revision,
# owner; the receipt chain); the fetch over HTTPS (with and without the CA,
# the token), redirects; every failure reason of API.md (and a bundle that
# unpacks to more than 16 x maxBytes); signatures; the decision-test OPA
# down, then up; a GovernedAPIRelease gated on the bundle; deletion; a hand
# edit of the published ConfigMap restored. One operator, one OPA, one bundle
# server; the bundles of all cases are applied at once, each area in its own
# namespace, and then each outcome is waited for.
source "$(dirname "$0")/lib.sh"

OPA=$(bash "$E2E_ROOT/hack/opa.sh")
BUNDLESERVER=$(bash "$E2E_ROOT/hack/gotool.sh" bundleserver)
REPO=registry.kfm.local/kfm-api
REVISION=2026.12.06-1

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
digest_of() { printf 'sha256:%s' "$(sha256sum < "$1" | cut -c1-64)"; }
size_of() { wc -c < "$1" | tr -d ' '; }

# --- a test CA, the bundle server's certificate, signing keys ---------------

pki="$E2E_DIR/pki"
test_ca "$pki" ca
test_server_cert "$pki" server ca
# the bundle signing key (RSA, RS256) and another key nobody trusts
openssl genrsa -out "$pki/signing.pem" 2048 2>/dev/null
openssl rsa -in "$pki/signing.pem" -pubout -out "$pki/signing.pub" 2>/dev/null
openssl genrsa -out "$pki/other.pem" 2048 2>/dev/null

# --- the bundles --------------------------------------------------------------

srv="$E2E_DIR/srv"
mkdir -p "$srv/private"

# policy_tree DIR [ROOT]: a bundle source tree whose package is ROOT (default kfm):
# ROOT/authz.rego, data under ROOT/config, a .manifest with revision and roots [ROOT]
policy_tree() {
  local dir=$1 root=${2:-kfm}
  mkdir -p "$dir/$root/config"
  cat > "$dir/$root/authz.rego" <<EOF
package $root

default allow := false

allow if input.role == "admin"

allow if {
	input.role == "public"
	not input.dataset.policy_label in data.$root.config.restricted_labels
}
EOF
  printf '{"restricted_labels": ["restricted", "sensitive"]}\n' > "$dir/$root/config/data.json"
  printf '{"revision": "%s", "roots": ["%s"]}\n' "$REVISION" "$root" > "$dir/.manifest"
}
# opa_build DIR OUT [opa build flags...]
opa_build() {
  local dir=$1 out=$2; shift 2
  (cd "$dir" && "$OPA" build -b . -o "$out" "$@")
}

src="$E2E_DIR/src"
policy_tree "$src/good"
opa_build "$src/good" "$srv/good.tar.gz"
cp "$srv/good.tar.gz" "$srv/private/good.tar.gz"
GOOD=$(digest_of "$srv/good.tar.gz")

policy_tree "$src/other-root" other
opa_build "$src/other-root" "$srv/other-root.tar.gz"

# over 900 KiB compressed: data that does not compress (random bytes, base64)
policy_tree "$src/big"
python3 -c '
import base64, json, os, sys
json.dump({"blobs": [base64.b64encode(os.urandom(3 << 10)).decode() for _ in range(400)]}, open(sys.argv[1], "w"))' \
  "$src/big/kfm/config/blobs.json"
mkdir -p "$src/big/kfm/blobs" && mv "$src/big/kfm/config/blobs.json" "$src/big/kfm/blobs/data.json"
opa_build "$src/big" "$srv/big.tar.gz"
BIG=$(digest_of "$srv/big.tar.gz")

# small compressed, big unpacked: 1.5 MiB of one repeated string
policy_tree "$src/bomb"
mkdir -p "$src/bomb/kfm/filler"
python3 -c 'import json, sys; json.dump({"filler": "x" * (3 << 19)}, open(sys.argv[1], "w"))' "$src/bomb/kfm/filler/data.json"
opa_build "$src/bomb" "$srv/bomb.tar.gz"

# signed by OPA: keyid and scope as claims
printf '{"keyid": "kfm-2026", "scope": "write"}\n' > "$pki/claims.json"
opa_build "$src/good" "$srv/signed.tar.gz" --signing-key "$pki/signing.pem" --signing-alg RS256 --claims-file "$pki/claims.json"
opa_build "$src/good" "$srv/other-key.tar.gz" --signing-key "$pki/other.pem" --signing-alg RS256 --claims-file "$pki/claims.json"

# malformed (made by hand on purpose)
printf 'this is not a gzip file\n' > "$srv/not-gzip.tar.gz"
mkdir -p "$src/no-manifest/kfm" && cp "$src/good/kfm/authz.rego" "$src/no-manifest/kfm/"
tar -C "$src/no-manifest" -czf "$srv/no-manifest.tar.gz" kfm
python3 - "$srv/signed.tar.gz" "$srv/tampered.tar.gz" "$srv/traversal.tar.gz" <<'PY'
import io, sys, tarfile
signed, tampered, traversal = sys.argv[1:]
def add(t, name, data):
    info = tarfile.TarInfo(name); info.size = len(data); info.mode = 0o600
    t.addfile(info, io.BytesIO(data))
# the signed bundle with kfm/authz.rego changed after signing
with tarfile.open(signed) as src, tarfile.open(tampered, "w:gz") as out:
    for m in src.getmembers():
        data = src.extractfile(m).read()
        if m.name.lstrip("/") == "kfm/authz.rego":
            data += b"\nallow if input.role == \"intruder\"\n"
        add(out, m.name, data)
# a well-formed bundle but for one entry that climbs out of the bundle
with tarfile.open(traversal, "w:gz") as out:
    add(out, ".manifest", b'{"revision": "x", "roots": ["kfm"]}')
    add(out, "kfm/authz.rego", b"package kfm\n\nallow := true\n")
    add(out, "../../etc/evil.rego", b"package evil\n\nallow := true\n")
PY

# --- the bundle server and the decision-test OPA ------------------------------

TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
e2e_secret "$TOKEN"
"$BUNDLESERVER" -dir "$srv" -cert "$pki/server.crt" -key "$pki/server.key" -http 127.0.0.1:0 \
  -token "$TOKEN" -token-path /private/ >"$E2E_DIR/bundleserver.out" 2>"$E2E_DIR/bundleserver.log" &
E2E_PIDS+=($!)
eventually 10 grep -q listening "$E2E_DIR/bundleserver.out" || { cat "$E2E_DIR/bundleserver.log"; exit 1; }
BS=$(sed -n 's/.*listening on \(https[^,]*\),.*/\1/p' "$E2E_DIR/bundleserver.out")

# The OPA starts later: first a bundle must see it down.
OPA_PORT=$(free_port)
OPA_URL="http://127.0.0.1:$OPA_PORT"
opa_start() {
  "$OPA" run --server --addr "127.0.0.1:$OPA_PORT" --log-level error >"$E2E_DIR/opa.log" 2>&1 &
  E2E_PIDS+=($!)
  eventually 20 curl -fsS --max-time 2 "$OPA_URL/health"
}

install_operator_rbac
good_api_start
operator_start

# --- the PolicyBundles --------------------------------------------------------

# pb NS NAME URL DIGEST [source lines, 4 spaces] [spec lines, 2 spaces]
pb() {
  kubectl -n "$1" apply -f - >/dev/null <<EOF
apiVersion: governance.kfm.dev/v1alpha1
kind: PolicyBundle
metadata: {name: $2}
spec:
  source:
    url: "$3"
    digest: "$4"
${5:-}
  requiredRoots: [kfm]
${6:-}
EOF
}
CA="    caSecretRef: {name: bundle-ca, key: ca.crt}"
secrets() { # ns: the CA, the token and the signing key as Secrets
  kubectl -n "$1" create secret generic bundle-ca --from-file=ca.crt="$pki/ca.crt" >/dev/null
  kubectl -n "$1" create secret generic bundle-token --from-literal=token="$TOKEN" >/dev/null
  kubectl -n "$1" create secret generic bundle-signing --from-file=key.pem="$pki/signing.pub" >/dev/null
}
SIGNING="  signing: {publicKeySecretRef: {name: bundle-signing, key: key.pem}, keyID: kfm-2026, scope: write}"
# decision tests: public users cannot read restricted data, can read public data; admins can
CASES="    - {name: public-cannot-read-restricted, path: kfm/allow, input: {role: public, dataset: {policy_label: restricted}}, expect: false}
    - {name: public-reads-public, path: kfm/allow, input: {role: public, dataset: {policy_label: public}}, expect: true}
    - {name: admin-reads-restricted, path: kfm/allow, input: {role: admin, dataset: {policy_label: restricted}}, expect: true}"
FAILING_CASE="    - {name: public-reads-restricted, path: kfm/allow, input: {role: public, dataset: {policy_label: sensitive}}, expect: true}"

ns_good=$(new_namespace pb-good); ns_fetch=$(new_namespace pb-fetch); ns_bad=$(new_namespace pb-bad)
ns_sig=$(new_namespace pb-sig); ns_dt=$(new_namespace pb-dt); ns_gate=$(new_namespace pb-gate)
for ns in "$ns_good" "$ns_fetch" "$ns_bad" "$ns_sig" "$ns_dt" "$ns_gate"; do secrets "$ns"; done

pb "$ns_good" good "$BS/good.tar.gz" "$GOOD" "$CA"

pb "$ns_fetch" no-ca "$BS/good.tar.gz" "$GOOD"
pb "$ns_fetch" token "$BS/private/good.tar.gz" "$GOOD" "$CA
    authSecretRef: {name: bundle-token, key: token}"
pb "$ns_fetch" no-token "$BS/private/good.tar.gz" "$GOOD" "$CA"
pb "$ns_fetch" redirect-3 "$BS/redirect/3/good.tar.gz" "$GOOD" "$CA"
pb "$ns_fetch" redirect-4 "$BS/redirect/4/good.tar.gz" "$GOOD" "$CA"
pb "$ns_fetch" to-http "$BS/to-http/good.tar.gz" "$GOOD" "$CA"

pb "$ns_bad" wrong-digest "$BS/good.tar.gz" "$(digest not-this-bundle)" "$CA"
pb "$ns_bad" not-gzip "$BS/not-gzip.tar.gz" "$(digest_of "$srv/not-gzip.tar.gz")" "$CA"
pb "$ns_bad" no-manifest "$BS/no-manifest.tar.gz" "$(digest_of "$srv/no-manifest.tar.gz")" "$CA"
pb "$ns_bad" missing-root "$BS/other-root.tar.gz" "$(digest_of "$srv/other-root.tar.gz")" "$CA"
pb "$ns_bad" traversal "$BS/traversal.tar.gz" "$(digest_of "$srv/traversal.tar.gz")" "$CA"
pb "$ns_bad" over-max-bytes "$BS/big.tar.gz" "$BIG" "$CA
    maxBytes: 65536"
pb "$ns_bad" over-configmap "$BS/big.tar.gz" "$BIG" "$CA
    maxBytes: 2097152"
pb "$ns_bad" unpacks-too-big "$BS/bomb.tar.gz" "$(digest_of "$srv/bomb.tar.gz")" "$CA
    maxBytes: 65536"

pb "$ns_sig" signed "$BS/signed.tar.gz" "$(digest_of "$srv/signed.tar.gz")" "$CA" "$SIGNING"
pb "$ns_sig" other-key "$BS/other-key.tar.gz" "$(digest_of "$srv/other-key.tar.gz")" "$CA" "$SIGNING"
pb "$ns_sig" tampered "$BS/tampered.tar.gz" "$(digest_of "$srv/tampered.tar.gz")" "$CA" "$SIGNING"

pb "$ns_dt" tests-pass "$BS/good.tar.gz" "$GOOD" "$CA" "  decisionTests:
    opaURL: \"$OPA_URL\"
    cases:
$CASES"
pb "$ns_dt" tests-fail "$BS/good.tar.gz" "$GOOD" "$CA" "  decisionTests:
    opaURL: \"$OPA_URL\"
    cases:
$CASES
$FAILING_CASE"

# --- what each one ends with --------------------------------------------------

# cond NS NAME TYPE: "status reason" of that condition
cond() { jp "$1" "pb/$2" "{.status.conditions[?(@.type==\"$3\")].status} {.status.conditions[?(@.type==\"$3\")].reason}"; }
# says NS NAME TEXT: a condition's message contains TEXT (case-insensitive)
says() {
  local m
  m=$(jp "$1" "pb/$2" '{range .status.conditions[*]}{.type}: {.message}{"\n"}{end}')
  grep -qiF -- "$3" <<<"$m" || { echo "no condition message contains \"$3\":"; echo "$m"; return 1; }
}
# fails NS NAME REASON TEXT...: Ready=False with REASON, Stalled=True, phase Failed,
# a message with each TEXT, no verifiedDigest (whichever check failed, decision
# tests included), and nothing published.
fails() {
  local ns=$1 name=$2 reason=$3 t; shift 3
  check "$name: Ready=False $reason" eventually 60 equals "False $reason" cond "$ns" "$name" Ready
  check "$name: Stalled=True $reason (a spec change is needed)" equals "True $reason" cond "$ns" "$name" Stalled
  check "$name: phase Failed" equals Failed jp "$ns" "pb/$name" '{.status.phase}'
  for t in "$@"; do check "$name: the message says \"$t\"" says "$ns" "$name" "$t"; done
  check "$name: no verifiedDigest" equals "" jp "$ns" "pb/$name" '{.status.verifiedDigest}'
  check "$name: nothing published" bash -c "! kubectl -n $ns get configmap $name-bundle 2>/dev/null"
}
# not_ready_because NS NAME REASON: Ready is False or Unknown (still retried) with REASON
not_ready_because() {
  case $(cond "$1" "$2" Ready) in
    "False $3" | "Unknown $3") return 0 ;;
    *) echo "Ready: $(cond "$1" "$2" Ready)"; return 1 ;;
  esac
}
# transient NS NAME TEXT...: FetchFailed, Reconciling=True (retried), never published
transient() {
  local ns=$1 name=$2 t; shift 2
  check "$name: not Ready, reason FetchFailed" eventually 60 not_ready_because "$ns" "$name" FetchFailed
  check "$name: Reconciling=True (retried with backoff)" equals True jp "$ns" "pb/$name" '{.status.conditions[?(@.type=="Reconciling")].status}'
  for t in "$@"; do check "$name: the message says \"$t\"" says "$ns" "$name" "$t"; done
  check "$name: not Published" bash -c "[ \"\$(kubectl -n $ns get pb $name -o jsonpath='{.status.phase}')\" != Published ]"
  check "$name: nothing published" bash -c "! kubectl -n $ns get configmap $name-bundle 2>/dev/null"
}
# published NS NAME DIGEST [TIMEOUT]: Ready, Published, and the ConfigMap holds exactly those bytes
published() {
  local ns=$1 name=$2 want=$3
  check "$name: kubectl wait --for=condition=Ready" kubectl -n "$ns" wait --for=condition=Ready "pb/$name" --timeout="${4:-90}s"
  check "$name: phase Published, verifiedDigest is spec.source.digest" equals "Published $want" \
    jp "$ns" "pb/$name" '{.status.phase} {.status.verifiedDigest}'
  check "$name: the ConfigMap's bundle.tar.gz hashes to the digest" equals "${want#sha256:}" \
    bash -c "kubectl -n $ns get configmap $name-bundle -o jsonpath='{.binaryData.bundle\\.tar\\.gz}' | base64 -d | sha256sum | cut -c1-64"
}

say "the decision-test OPA is down: the bundle waits, never passes"
check "tests-pass: a Warning Event names the OPA it cannot reach" eventually 60 bash -c \
  "kubectl -n $ns_dt get events --field-selector involvedObject.name=tests-pass,type=Warning -o jsonpath='{.items[*].message}' | grep -qF 127.0.0.1:$OPA_PORT"
check "tests-pass: Reconciling=True" equals True jp "$ns_dt" pb/tests-pass '{.status.conditions[?(@.type=="Reconciling")].status}'
check "tests-pass: the bytes are verified (phase Verified), the tests are not" equals Verified jp "$ns_dt" pb/tests-pass '{.status.phase}'
check "tests-pass: not Ready" bash -c "[ \"\$(kubectl -n $ns_dt get pb tests-pass -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}')\" != True ]"
check "tests-pass: not Published" bash -c "[ \"\$(kubectl -n $ns_dt get pb tests-pass -o jsonpath='{.status.phase}')\" != Published ]"
check "tests-pass: a message names the OPA it cannot reach" says "$ns_dt" tests-pass "127.0.0.1:$OPA_PORT"
check "tests-pass: nothing published" bash -c "! kubectl -n $ns_dt get configmap tests-pass-bundle 2>/dev/null"
check "the decision-test OPA starts" opa_start

say "a good bundle over HTTPS with the test CA is published"
published "$ns_good" good "$GOOD"
cm="$E2E_DIR/good-cm.json"
kubectl -n "$ns_good" get configmap good-bundle -o json > "$cm"
check "good: the ConfigMap's bytes are the served file's" bash -c \
  "python3 -c 'import json,sys,base64; sys.stdout.buffer.write(base64.b64decode(json.load(open(sys.argv[1]))[\"binaryData\"][\"bundle.tar.gz\"]))' $cm | cmp - $srv/good.tar.gz"
check "good: data.digest and data.revision" equals "$GOOD $REVISION" jp "$ns_good" configmap/good-bundle '{.data.digest} {.data.revision}'
check "good: the ConfigMap is owned by the bundle (controller)" equals "PolicyBundle good $(jp "$ns_good" pb/good '{.metadata.uid}') true" \
  jp "$ns_good" configmap/good-bundle '{.metadata.ownerReferences[0].kind} {.metadata.ownerReferences[0].name} {.metadata.ownerReferences[0].uid} {.metadata.ownerReferences[0].controller}'
check "good: status revision, roots, regoModules, sizeBytes" equals "$REVISION [\"kfm\"] 1 $(size_of "$srv/good.tar.gz")" \
  jp "$ns_good" pb/good '{.status.revision} {.status.roots} {.status.regoModules} {.status.sizeBytes}'
for c in DigestVerified StructureValid Published; do
  check "good: $c=True" equals True jp "$ns_good" pb/good "{.status.conditions[?(@.type==\"$c\")].status}"
done
check "good: observedGeneration is the generation" equals "$(jp "$ns_good" pb/good '{.metadata.generation}')" jp "$ns_good" pb/good '{.status.observedGeneration}'
check "good: a receipt" bash -c "kubectl -n $ns_good get pb good -o jsonpath='{.status.receipt.auditRef}' | grep -Eq '^sha256:[0-9a-f]{64}$'"
kubectl -n "$ns_good" get pb good -o json > "$E2E_DIR/good.json"
check "good: membrane receipt verify accepts the receipt chain" "$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/good.json"
check "kubectl get pb shows DIGEST, REVISION, READY, AGE" bash -c \
  "kubectl -n $ns_good get pb good | head -1 | grep -q 'DIGEST.*REVISION.*READY.*AGE' && kubectl -n $ns_good get pb good | grep -q $REVISION"
check "good: kubectl describe shows the Published condition" bash -c "kubectl -n $ns_good describe pb good | grep -q Published"

say "the fetch: TLS with and without the CA, the bearer token, redirects"
transient "$ns_fetch" no-ca certificate
published "$ns_fetch" token "$GOOD"
transient "$ns_fetch" no-token 401
published "$ns_fetch" redirect-3 "$GOOD"
transient "$ns_fetch" redirect-4 redirect
transient "$ns_fetch" to-http redirect
check "the bundle server never served a plain-HTTP request for to-http" bash -c "! grep -q '^bundleserver: .* http GET' $E2E_DIR/bundleserver.log"

say "every failure reason, and nothing published"
fails "$ns_bad" wrong-digest DigestMismatch "$(digest not-this-bundle)" "$GOOD"
fails "$ns_bad" not-gzip InvalidBundle gzip
fails "$ns_bad" no-manifest InvalidBundle .manifest
fails "$ns_bad" missing-root MissingRoot kfm
fails "$ns_bad" traversal InvalidBundle ../../etc/evil.rego
fails "$ns_bad" over-max-bytes TooLarge 65536
fails "$ns_bad" over-configmap TooLarge 900
# API.md does not name the reason for a bundle that unpacks to more than 16 x maxBytes
check "unpacks-too-big ($(size_of "$srv/bomb.tar.gz") bytes packed, 1.5 MiB unpacked, maxBytes 65536): Stalled=True, InvalidBundle or TooLarge" \
  eventually 60 bash -c "kubectl -n $ns_bad get pb unpacks-too-big -o jsonpath='{.status.conditions[?(@.type==\"Stalled\")].status} {.status.conditions[?(@.type==\"Stalled\")].reason}' | grep -Eq '^True (InvalidBundle|TooLarge)\$'"
check "unpacks-too-big: the message names the limit, 16 x maxBytes" says "$ns_bad" unpacks-too-big 1048576
check "unpacks-too-big: nothing published" bash -c "! kubectl -n $ns_bad get configmap unpacks-too-big-bundle 2>/dev/null"

say "signatures"
published "$ns_sig" signed "$(digest_of "$srv/signed.tar.gz")"
check "signed: SignatureVerified=True" equals True jp "$ns_sig" pb/signed '{.status.conditions[?(@.type=="SignatureVerified")].status}'
fails "$ns_sig" other-key SignatureInvalid signature
fails "$ns_sig" tampered SignatureInvalid kfm/authz.rego

say "decision tests against the real OPA"
published "$ns_dt" tests-pass "$GOOD" 180
check "tests-pass: three results, each passed" equals "3 3" bash -c \
  "kubectl -n $ns_dt get pb tests-pass -o json | python3 -c 'import json,sys; r=json.load(sys.stdin)[\"status\"][\"decisionTests\"]; print(len(r), sum(x[\"passed\"] is True for x in r))'"
check "tests-pass: DecisionTestsPassed=True" equals True jp "$ns_dt" pb/tests-pass '{.status.conditions[?(@.type=="DecisionTestsPassed")].status}'
fails "$ns_dt" tests-fail DecisionTestFailed public-reads-restricted
check "tests-fail: the failing case's result says what OPA answered" equals "False false" bash -c \
  "kubectl -n $ns_dt get pb tests-fail -o json | python3 -c 'import json,sys; r=[x for x in json.load(sys.stdin)[\"status\"][\"decisionTests\"] if x[\"name\"]==\"public-reads-restricted\"][0]; print(r[\"passed\"], json.dumps(r.get(\"got\")).strip(chr(34)))'"
check "membrane removed what it loaded into the OPA" eventually 30 equals "[] {}" bash -c \
  "curl -fsS $OPA_URL/v1/policies | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"result\"])' | tr -d '\n'; printf ' '; curl -fsS $OPA_URL/v1/data | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[\"result\"]))'"

say "a GovernedAPIRelease gated on the bundle waits until it is published with the pinned digest"
deployment "$ns_gate" kfm-api "$REPO@$(digest gate-a)" 1
pb "$ns_gate" gate "$BS/good.tar.gz" "$(digest not-this-bundle)" "$CA"
release "$ns_gate" kfm-api kfm-api "$(digest gate-b)" "  policyBundleRef: {name: gate}" >/dev/null
check "gate: the bundle fails DigestMismatch" eventually 60 equals "False DigestMismatch" cond "$ns_gate" gate Ready
check "the release waits: GatesPassed=False PolicyBundleNotReady" eventually 30 equals "False PolicyBundleNotReady" \
  jp "$ns_gate" gar/kfm-api '{.status.conditions[?(@.type=="GatesPassed")].status} {.status.conditions[?(@.type=="GatesPassed")].reason}'
check "  Reconciling=True" equals True jp "$ns_gate" gar/kfm-api '{.status.conditions[?(@.type=="Reconciling")].status}'
check "  the Deployment is untouched" equals "$REPO@$(digest gate-a)" jp "$ns_gate" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
kubectl -n "$ns_gate" patch pb gate --type merge -p "{\"spec\":{\"source\":{\"digest\":\"$GOOD\"}}}" >/dev/null
published "$ns_gate" gate "$GOOD"
check "the release proceeds: Succeeded" eventually 90 phase_is "$ns_gate" kfm-api Succeeded
check "  status.policyBundleDigest is the bundle's digest" equals "$GOOD" jp "$ns_gate" gar/kfm-api '{.status.policyBundleDigest}'
check "  the pod template carries governance.kfm.dev/policy-bundle-digest" equals "$GOOD" \
  jp "$ns_gate" deploy/kfm-api '{.spec.template.metadata.annotations.governance\.kfm\.dev/policy-bundle-digest}'
check "  the Deployment runs the new digest" equals "$REPO@$(digest gate-b)" jp "$ns_gate" deploy/kfm-api '{.spec.template.spec.containers[0].image}'

say "a hand edit of the published ConfigMap is restored, and a Warning Event says so"
kubectl -n "$ns_good" patch configmap good-bundle --type merge \
  -p "{\"data\":{\"digest\":\"$(digest hand-edit)\"},\"binaryData\":{\"bundle.tar.gz\":\"$(printf 'edited by hand' | base64)\"}}" >/dev/null
check "the ConfigMap holds the bundle again" eventually 60 equals "${GOOD#sha256:} $GOOD" bash -c \
  "printf '%s %s' \"\$(kubectl -n $ns_good get configmap good-bundle -o jsonpath='{.binaryData.bundle\\.tar\\.gz}' | base64 -d | sha256sum | cut -c1-64)\" \"\$(kubectl -n $ns_good get configmap good-bundle -o jsonpath='{.data.digest}')\""
check "a Warning Event on the bundle names the ConfigMap" eventually 30 bash -c \
  "kubectl -n $ns_good get events --field-selector involvedObject.name=good,type=Warning -o jsonpath='{.items[*].message}' | grep -q good-bundle"
check "good: still Ready" equals "True" jp "$ns_good" pb/good '{.status.conditions[?(@.type=="Ready")].status}'

say "deleting the bundle removes its ConfigMap (owner reference, garbage collection)"
kubectl -n "$ns_good" delete pb good --timeout=30s >/dev/null
check "the ConfigMap good-bundle is deleted" kubectl -n "$ns_good" wait --for=delete configmap/good-bundle --timeout=60s

say "membrane_bundles_total counts each outcome: Published, or the failure reason"
check "/metrics answers 200 in the Prometheus text format" metrics_scrape "$E2E_DIR/metrics.txt"
check "every metric of API.md; bundles_total counts the cases above" metrics_check "$E2E_DIR/metrics.txt" \
  'membrane_bundles_total{outcome="Published"}>=6' 'membrane_bundles_total{outcome="FetchFailed"}>=4' \
  'membrane_bundles_total{outcome="DigestMismatch"}>=2' 'membrane_bundles_total{outcome="InvalidBundle"}>=3' \
  'membrane_bundles_total{outcome="MissingRoot"}>=1' 'membrane_bundles_total{outcome="TooLarge"}>=2' \
  'membrane_bundles_total{outcome="SignatureInvalid"}>=2' 'membrane_bundles_total{outcome="DecisionTestFailed"}>=1'

check "the operator is still running" kill -0 "$E2E_OPERATOR_PID"
check "SIGTERM: clean exit 0" operator_stop
