#!/usr/bin/env bash
# The image.verify supply-chain gate on the local control plane, against real
# registries on loopback and real cosign (e2e/registry.sh): the CNCF
# distribution registry (plain HTTP; and HTTPS with a test CA and token auth),
# and go-containerregistry's registry, which serves the OCI referrers API.
# Images are pushed with crane and signed offline with cosign v2 (the
# sha256-<hex>.sig tag) and v3 (a sigstore bundle: through the referrers API,
# or distribution's referrers tag fallback).
#
# Cases, each in its own namespace whose Deployment runs a signed digest A:
#  - signed (v2; v3 through the referrers API, answered as the OCI spec says and
#    as go-containerregistry does; v3 under the fallback tag): the
#    gate passes, the Deployment runs repository@digest, the receipt carries the
#    digest of the verified signature's payload;
#  - unsigned, signed by another key, a v2 signature of another digest
#    re-tagged onto this one, an attestation asked for but missing: GatesPassed
#    =False ImageNotVerified naming the digest, the Deployment untouched; the
#    attestation present (v2 and v3): passes;
#  - the rollback target (what the Deployment runs) unsigned: refused at
#    gating, naming the rollback target's digest;
#  - the registry down: Reconciling=True (transient), then up: passes;
#  - HTTPS with the test CA (spec.image.verify.caSecretRef) and credentials
#    from a kubernetes.io/dockerconfigjson Secret through the token flow; the
#    same without the Secret is refused.
source "$(dirname "$0")/lib.sh"
source "$E2E_ROOT/e2e/registry.sh"

registry_tools
install_operator_rbac
good_api_start
operator_start

# the registries: plain (distribution, HTTP, no auth), flaky (the same kind, stopped and
# started again), oci (referrers API), secure (distribution, HTTPS, token auth)
registry_start "$E2E_DIR/plain" http none
E2E_PIDS+=("$REG_PID")
PLAIN=$REG_HOST
cosign_keys "$E2E_DIR/keys"
ociregistry_start "$E2E_DIR/oci"
E2E_PIDS+=("$OCI_PID")
OCI=$OCI_HOST
# the same, answering referrers as go-containerregistry does: artifactType the config's media type
ociregistry_start "$E2E_DIR/oci-raw" -raw-referrers
E2E_PIDS+=("$OCI_PID")
OCIRAW=$OCI_HOST
v3flags=(--use-signing-config=false --tlog-upload=false)
http=(--allow-http-registry --allow-insecure-registry)

# sign V KEY REF: cosign V signs REF (HOST/NAME@DIGEST) with keys/KEY.key, offline
sign() {
  local extra=(--tlog-upload=false)
  [ "$1" = v3 ] && extra=("${v3flags[@]}")
  reg_cosign "$1" sign --key "$E2E_DIR/keys/$2.key" "${extra[@]}" "${http[@]}" -y "$3" >"$E2E_DIR/cosign.out" 2>&1 ||
    { cat "$E2E_DIR/cosign.out"; return 1; }
}
# attest V KEY REF: an SLSA v1 provenance attestation of REF by keys/KEY.key
printf '%s\n' '{"buildDefinition":{"buildType":"https://kfm.dev/membrane/e2e@v1","externalParameters":{}},"runDetails":{"builder":{"id":"https://kfm.dev/membrane/e2e"}}}' >"$E2E_DIR/provenance.json"
attest() {
  local extra=(--tlog-upload=false)
  [ "$1" = v3 ] && extra=("${v3flags[@]}")
  reg_cosign "$1" attest --key "$E2E_DIR/keys/$2.key" --type slsaprovenance1 --predicate "$E2E_DIR/provenance.json" \
    "${extra[@]}" "${http[@]}" -y "$3" >"$E2E_DIR/cosign.out" 2>&1 || { cat "$E2E_DIR/cosign.out"; return 1; }
}
# push_to HOST: a new random image in HOST/kfm/kfm-api; prints its digest
push_to() {
  local d
  d=$(image_push kfm/kfm-api) || return 1
  [ "$1" = "$REG_HOST" ] || reg_crane copy "$REG_HOST/kfm/kfm-api@$d" "$1/kfm/kfm-api:${d:7:12}" 2>/dev/null
  echo "$d"
}
# v2_payload_digest HOST DIGEST: the digest of the simple-signing payload of DIGEST's .sig
v2_payload_digest() {
  curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$1/v2/kfm/kfm-api/manifests/sha256-${2#sha256:}.sig" | jq -r '.layers[0].digest'
}
# v3_payload_digest HOST DIGEST: sha256 of the DSSE payload (the in-toto statement) of
# DIGEST's first sigstore bundle, found through the referrers API or the fallback tag
v3_payload_digest() {
  local idx m b
  idx=$(curl -fsS "http://$1/v2/kfm/kfm-api/referrers/$2" 2>/dev/null) ||
    idx=$(curl -fsS -H 'Accept: application/vnd.oci.image.index.v1+json' "http://$1/v2/kfm/kfm-api/manifests/sha256-${2#sha256:}")
  m=$(jq -r '.manifests[0].digest' <<<"$idx")
  b=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$1/v2/kfm/kfm-api/manifests/$m" | jq -r '.layers[0].digest')
  printf 'sha256:%s' "$(curl -fsS "http://$1/v2/kfm/kfm-api/blobs/$b" | jq -r '.dsseEnvelope.payload' | base64 -d | sha256sum | cut -c1-64)"
}

# gar NS REPOSITORY DIGEST [more lines of spec.image.verify, indented 6]: release kfm-api of
# Deployment kfm-api to REPOSITORY@DIGEST, gated on the p256 key (Secret cosign-pub)
gar() {
  kubectl -n "$1" apply -f - >/dev/null <<EOF
apiVersion: governance.kfm.dev/v1alpha1
kind: GovernedAPIRelease
metadata: {name: kfm-api}
spec:
  environment: staging
  changeRecord: "CHG-e2e-supply-$RANDOM"
  target: {deployment: kfm-api, container: api}
  image:
    repository: $2
    digest: "$3"
    verify:
      publicKeySecretRef: {name: cosign-pub, key: cosign.pub}
${4:-}
  rollout: {observationSeconds: 0}
  verification: {checks: [health, ready], baseURL: "$E2E_GOOD_URL"}
EOF
}
INSECURE="      insecureRegistry: true"
SLSA='      attestations: ["https://slsa.dev/provenance/v1"]'
# area NAME IMAGE: a namespace (printed) whose Deployment kfm-api runs IMAGE, with the p256
# public key in Secret cosign-pub
area() {
  local ns
  ns=$(new_namespace "supply-$1")
  kubectl -n "$ns" create secret generic cosign-pub --from-file=cosign.pub="$E2E_DIR/keys/p256.pub" >/dev/null
  deployment "$ns" kfm-api "$2" 1
  echo "$ns"
}
succeeded_gen() { # ns: Succeeded for the current generation
  equals "Succeeded $(jp "$1" gar/kfm-api '{.metadata.generation}')" jp "$1" gar/kfm-api '{.status.phase} {.status.observedGeneration}'
}
image_is() { equals "$2" jp "$1" deploy/kfm-api '{.spec.template.spec.containers[0].image}'; }
refused() { # ns text...: GatesPassed=False ImageNotVerified, the message containing each text
  local msg t
  condition_is "$1" kfm-api GatesPassed False ImageNotVerified || return 1
  msg=$(jp "$1" gar/kfm-api '{.status.conditions[?(@.type=="GatesPassed")].message}')
  shift
  for t in "$@"; do grep -qF -- "$t" <<<"$msg" || { echo "message \"$msg\" does not name \"$t\""; return 1; }; done
}
# receipt_has NS VALUE: the newest status.history entry holds VALUE as one of its strings
receipt_has() {
  kubectl -n "$1" get gar kfm-api -o json | jq -e --arg v "$2" '[.status.history[-1] | .. | strings] | index($v) != null' >/dev/null ||
    { echo "no string $2 in the newest history entry:"; kubectl -n "$1" get gar kfm-api -o json | jq -c '.status.history[-1]'; return 1; }
}
receipt_verifies() {
  kubectl -n "$1" get gar kfm-api -o json >"$E2E_DIR/receipt-$1.json"
  "$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/receipt-$1.json"
}

say "images: pushed with crane, signed with cosign v2 and v3 (offline, key-based)"
P=$PLAIN/kfm/kfm-api
A=$(push_to "$PLAIN"); sign v2 p256 "$P@$A"                       # every plain area runs it
V2=$(push_to "$PLAIN"); sign v2 p256 "$P@$V2"
V3F=$(push_to "$PLAIN"); sign v3 p256 "$P@$V3F"                   # v3 under the fallback tag
UNSIGNED=$(push_to "$PLAIN")
OTHER=$(push_to "$PLAIN"); sign v2 other "$P@$OTHER"
RETAG=$(push_to "$PLAIN")                                          # A's signature copied onto RETAG's tag
reg_crane copy "$P:sha256-${A#sha256:}.sig" "$P:sha256-${RETAG#sha256:}.sig" 2>/dev/null
# the attestations are asked of the rollback target too: the attestation areas run ATTA
ATTA=$(push_to "$PLAIN"); sign v2 p256 "$P@$ATTA"; attest v2 p256 "$P@$ATTA"
NOATT=$(push_to "$PLAIN"); sign v2 p256 "$P@$NOATT"
ATT2=$(push_to "$PLAIN"); sign v2 p256 "$P@$ATT2"; attest v2 p256 "$P@$ATT2"
ATT3=$(push_to "$PLAIN"); sign v3 p256 "$P@$ATT3"; attest v3 p256 "$P@$ATT3"
OLD=$(push_to "$PLAIN")                                            # an unsigned rollback target
# the referrers-API registry: its own signed A and a v3-signed digest
O=$OCI/kfm/kfm-api
reg_crane copy "$P@$A" "$O:a" 2>/dev/null; sign v3 p256 "$O@$A"
V3R=$(push_to "$OCI"); sign v3 p256 "$O@$V3R"
R=$OCIRAW/kfm/kfm-api
reg_crane copy "$P@$A" "$R:a" 2>/dev/null; sign v3 p256 "$R@$A"
V3RAW=$(push_to "$OCIRAW"); sign v3 p256 "$R@$V3RAW"
check "the referrers registry answers GET /v2/<name>/referrers/<digest> (so cosign v3 wrote no fallback tag)" \
  bash -c "curl -fsS 'http://$OCI/v2/kfm/kfm-api/referrers/$V3R' | jq -e '.manifests | length == 1' && ! curl -fsS 'http://$OCI/v2/kfm/kfm-api/tags/list' | grep -q sha256-"
check "distribution has no referrers API: cosign v3 kept the fallback tag sha256-<hex>" \
  bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' 'http://$PLAIN/v2/kfm/kfm-api/referrers/$V3F')\" = 404 ] && curl -fsS 'http://$PLAIN/v2/kfm/kfm-api/tags/list' | grep -q 'sha256-${V3F#sha256:}\"'"

say "signed digests pass and roll out: cosign v2, v3 through the referrers API, v3 under the fallback tag"
ns_v2=$(area v2 "$P@$A"); gar "$ns_v2" "$P" "$V2" "$INSECURE"
ns_v3r=$(area v3r "$O@$A"); gar "$ns_v3r" "$O" "$V3R" "$INSECURE"
ns_v3f=$(area v3f "$P@$A"); gar "$ns_v3f" "$P" "$V3F" "$INSECURE"
ns_v3raw=$(area v3raw "$R@$A"); gar "$ns_v3raw" "$R" "$V3RAW" "$INSECURE"
say "refused: unsigned, another key, a re-tagged signature, an attestation missing, an unsigned rollback target"
ns_unsigned=$(area unsigned "$P@$A"); gar "$ns_unsigned" "$P" "$UNSIGNED" "$INSECURE"
ns_other=$(area other "$P@$A"); gar "$ns_other" "$P" "$OTHER" "$INSECURE"
ns_retag=$(area retag "$P@$A"); gar "$ns_retag" "$P" "$RETAG" "$INSECURE"
ns_noatt=$(area noatt "$P@$ATTA"); gar "$ns_noatt" "$P" "$NOATT" "$INSECURE
$SLSA"
ns_att2=$(area att2 "$P@$ATTA"); gar "$ns_att2" "$P" "$ATT2" "$INSECURE
$SLSA"
ns_att3=$(area att3 "$P@$ATTA"); gar "$ns_att3" "$P" "$ATT3" "$INSECURE
$SLSA"
ns_old=$(area old "$P@$OLD"); gar "$ns_old" "$P" "$V2" "$INSECURE"

for c in "v2:$ns_v2:$P@$V2" "v3, referrers API:$ns_v3r:$O@$V3R" "v3, fallback tag:$ns_v3f:$P@$V3F" \
         "v3, referrers whose artifactType is the config's (go-containerregistry's answer):$ns_v3raw:$R@$V3RAW" \
         "v2 attestation:$ns_att2:$P@$ATT2" "v3 attestation:$ns_att3:$P@$ATT3"; do
  what=${c%%:*}; rest=${c#*:}; ns=${rest%%:*}; ref=${rest#*:}
  check "$what: GatesPassed=True and Succeeded" eventually 90 succeeded_gen "$ns"
  check "  the Deployment runs $ref" image_is "$ns" "$ref"
done
KEYID="sha256:$(openssl pkey -pubin -in "$E2E_DIR/keys/p256.pub" -outform DER | sha256sum | cut -c1-64)"
check "v2: status.imageSignatures names the image's signature: its payload's digest, layout v2, the key" \
  equals "$V2 $(v2_payload_digest "$PLAIN" "$V2") v2 $KEYID" \
  jp "$ns_v2" gar/kfm-api '{.status.imageSignatures[?(@.role=="image")].digest} {.status.imageSignatures[?(@.role=="image")].payloadDigest} {.status.imageSignatures[?(@.role=="image")].layout} {.status.imageSignatures[?(@.role=="image")].keyID}'
check "  and the rollback target's (A)" equals "$A $(v2_payload_digest "$PLAIN" "$A") v2" \
  jp "$ns_v2" gar/kfm-api '{.status.imageSignatures[?(@.role=="rollbackTarget")].digest} {.status.imageSignatures[?(@.role=="rollbackTarget")].payloadDigest} {.status.imageSignatures[?(@.role=="rollbackTarget")].layout}'
check "  the receipt (newest history entry) seals the payload's digest" receipt_has "$ns_v2" "$(v2_payload_digest "$PLAIN" "$V2")"
check "v3, referrers API: the DSSE payload's digest, layout v3" equals "$(v3_payload_digest "$OCI" "$V3R") v3" \
  jp "$ns_v3r" gar/kfm-api '{.status.imageSignatures[?(@.role=="image")].payloadDigest} {.status.imageSignatures[?(@.role=="image")].layout}'
check "  the receipt seals it" receipt_has "$ns_v3r" "$(v3_payload_digest "$OCI" "$V3R")"
check "v3, fallback tag: the DSSE payload's digest, layout v3" equals "$(v3_payload_digest "$PLAIN" "$V3F") v3" \
  jp "$ns_v3f" gar/kfm-api '{.status.imageSignatures[?(@.role=="image")].payloadDigest} {.status.imageSignatures[?(@.role=="image")].layout}'
check "v2: membrane receipt verify accepts the chain" receipt_verifies "$ns_v2"
check "v3: membrane receipt verify accepts the chain" receipt_verifies "$ns_v3r"
check "plain HTTP (insecureRegistry): a Warning Event InsecureRegistry" eventually 30 has_event "$ns_v2" kfm-api InsecureRegistry

check "unsigned: ImageNotVerified naming the digest" eventually 60 refused "$ns_unsigned" "image $UNSIGNED"
check "another key: ImageNotVerified naming the digest" eventually 60 refused "$ns_other" "$OTHER"
check "a signature of A re-tagged as RETAG's: ImageNotVerified naming RETAG" eventually 60 refused "$ns_retag" "$RETAG"
check "an attestation asked for and missing: ImageNotVerified naming the digest and the predicate type" \
  eventually 60 refused "$ns_noatt" "image $NOATT" "https://slsa.dev/provenance/v1"
check "the rollback target unsigned: ImageNotVerified naming the rollback target's digest" \
  eventually 60 refused "$ns_old" "rollback target $OLD"
for ns in "$ns_unsigned" "$ns_other" "$ns_retag" "$ns_noatt" "$ns_old"; do
  check "  $ns: Stalled=True ImageNotVerified (it needs a signature, not a retry)" condition_is "$ns" kfm-api Stalled True ImageNotVerified
done
for ns in "$ns_unsigned" "$ns_other" "$ns_retag"; do
  check "  $ns: the Deployment still runs A" image_is "$ns" "$P@$A"
done
check "  $ns_noatt: the Deployment still runs ATTA" image_is "$ns_noatt" "$P@$ATTA"
check "  $ns_old: the Deployment still runs the old digest" image_is "$ns_old" "$P@$OLD"
check "  no RolloutStarted Event for the refused ones" bash -c \
  "! kubectl get events -A --field-selector reason=RolloutStarted -o jsonpath='{.items[*].involvedObject.namespace}' | tr ' ' '\n' | grep -qxE '$ns_unsigned|$ns_other|$ns_retag|$ns_noatt|$ns_old'"

say "the registry down: transient (Reconciling), retried; up again: passes"
registry_start "$E2E_DIR/flaky" http none
E2E_PIDS+=("$REG_PID")
F=$REG_HOST/kfm/kfm-api
FA=$(push_to "$REG_HOST"); sign v2 p256 "$F@$FA"
FB=$(push_to "$REG_HOST"); sign v2 p256 "$F@$FB"
FPORT=$REG_PORT
ns_flaky=$(area flaky "$F@$FA")
registry_stop
gar "$ns_flaky" "$F" "$FB" "$INSECURE"
check "registry down: Reconciling=True ImageNotVerified" eventually 60 condition_is "$ns_flaky" kfm-api Reconciling True ImageNotVerified
check "  not Stalled" bash -c "[ \"\$(kubectl -n '$ns_flaky' get gar kfm-api -o jsonpath='{.status.conditions[?(@.type==\"Stalled\")].status}')\" != True ]"
check "  the Deployment still runs FA" image_is "$ns_flaky" "$F@$FA"
sleep 3
check "  still not Succeeded a moment later" bash -c "! kubectl -n '$ns_flaky' get gar kfm-api -o jsonpath='{.status.phase}' | grep -qx Succeeded"
registry_start "$E2E_DIR/flaky" http none "$FPORT"
E2E_PIDS+=("$REG_PID")
check "registry up again: Succeeded" eventually 180 succeeded_gen "$ns_flaky"
check "  the Deployment runs FB" image_is "$ns_flaky" "$F@$FB"

say "HTTPS with a test CA (caSecretRef) and token auth, credentials from a dockerconfigjson Secret"
registry_pki "$E2E_DIR/secure/pki"
REG_USER=membrane-e2e
REG_PASS=$(openssl rand -hex 16)
registry_start "$E2E_DIR/secure" https token
E2E_PIDS+=("$REG_PID" "$TOKEN_PID")
e2e_secret "$REG_PASS"
e2e_secret "$(printf '%s:%s' "$REG_USER" "$REG_PASS" | base64 -w0)"
S=$REG_HOST/kfm/kfm-api
SA=$(push_to "$REG_HOST"); sign v2 p256 "$S@$SA"
SB=$(push_to "$REG_HOST"); sign v3 p256 "$S@$SB"
SECURE="      registrySecretRef: {name: regcred}
      caSecretRef: {name: registry-ca, key: ca.crt}"
ns_secure=$(area secure "$S@$SA")
kubectl -n "$ns_secure" create secret docker-registry regcred --docker-server="$REG_HOST" \
  --docker-username="$REG_USER" --docker-password="$REG_PASS" >/dev/null
kubectl -n "$ns_secure" create secret generic registry-ca --from-file=ca.crt="$E2E_DIR/secure/pki/ca.crt" >/dev/null
gar "$ns_secure" "$S" "$SB" "$SECURE"
check "HTTPS + token auth: Succeeded" eventually 90 succeeded_gen "$ns_secure"
check "  the Deployment runs $S@$SB" image_is "$ns_secure" "$S@$SB"
check "  the operator went through the token server (a token was issued with pull scope)" \
  grep -q 'repository:kfm/kfm-api:pull.*-> 200' "$E2E_DIR/secure/token.log"
ns_nocred=$(area nocred "$S@$SA")
kubectl -n "$ns_nocred" create secret generic registry-ca --from-file=ca.crt="$E2E_DIR/secure/pki/ca.crt" >/dev/null
gar "$ns_nocred" "$S" "$SB" "      caSecretRef: {name: registry-ca, key: ca.crt}"
check "the same without credentials (the token server refuses): ImageNotVerified naming the digest" \
  eventually 60 refused "$ns_nocred" "$SB"
check "  the Deployment still runs SA" image_is "$ns_nocred" "$S@$SA"
ns_noca=$(area noca "$S@$SA")
kubectl -n "$ns_noca" create secret docker-registry regcred --docker-server="$REG_HOST" \
  --docker-username="$REG_USER" --docker-password="$REG_PASS" >/dev/null
gar "$ns_noca" "$S" "$SB" "      registrySecretRef: {name: regcred}"
check "without the CA (the test CA is not trusted): ImageNotVerified naming the digest" \
  eventually 60 refused "$ns_noca" "$SB"
check "  the Deployment still runs SA" image_is "$ns_noca" "$S@$SA"

for ns in "$ns_v2" "$ns_v3r" "$ns_v3f" "$ns_v3raw" "$ns_unsigned" "$ns_other" "$ns_retag" "$ns_noatt" "$ns_att2" "$ns_att3" \
          "$ns_old" "$ns_flaky" "$ns_secure" "$ns_nocred" "$ns_noca"; do
  kubectl delete namespace "$ns" --wait=false >/dev/null
done
registry_stop
ociregistry_stop
check "SIGTERM: clean exit 0" operator_stop
