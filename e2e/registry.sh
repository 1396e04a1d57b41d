# A real OCI registry on loopback and real cosign, for the image.verify gate's
# e2e (e2e/test_supply.sh), its fixtures (test/fixtures/cosign/regenerate.sh),
# the demo and the bench: the CNCF distribution registry (hack/registry.sh),
# crane (hack/crane.sh), cosign v2 and v3 (hack/cosign.sh), and the token
# server and bcrypt htpasswd lines of hack/registryauth (hack/gotool.sh).
# Functions only: sourcing it starts nothing. Needs free_port, test_ca and test_server_cert (e2e/common.sh).
#
# Everything is offline: no Rekor, no Fulcio, no TUF root. Key-based signing
# needs none of them once told so (see cosign_sign).
#
#   registry_tools                    REGISTRY_BIN CRANE COSIGN_V2 COSIGN_V3 REGISTRYAUTH
#   registry_pki DIR                  a test CA and the registry's and token server's certificates
#   registry_start DIR http|https none|htpasswd|token [PORT]
#   registry_stop                     (its storage stays: registry_start again on REG_PORT)
#   registry_use DIR                  REG_* name the registry started in DIR again
#   ociregistry_start DIR / ociregistry_stop   a second registry, with the OCI referrers API
#   reg_crane ARGS / reg_cosign v2|v3 ARGS   crane / cosign with the registry's CA and credentials
#   image_push REPO [TAG]             a small random image; prints its digest
#   cosign_keys DIR                   key pairs of each type cosign signs with
#   cosign_sign v2|v3 KEY REF / cosign_attest v2|v3 KEY REF PREDICATE

REG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export COSIGN_PASSWORD=${COSIGN_PASSWORD-}   # the test keys' password: none

# registry_tools: the binaries, from the environment hack/test.sh sets or built (cached)
registry_tools() {
  REGISTRY_BIN=${MEMBRANE_REGISTRY:-$(bash "$REG_ROOT/hack/registry.sh")}
  CRANE=${MEMBRANE_CRANE:-$(bash "$REG_ROOT/hack/crane.sh")}
  COSIGN_V2=${MEMBRANE_COSIGN_V2:-$(bash "$REG_ROOT/hack/cosign.sh" v2)}
  COSIGN_V3=${MEMBRANE_COSIGN_V3:-$(bash "$REG_ROOT/hack/cosign.sh" v3)}
  REGISTRYAUTH=${MEMBRANE_REGISTRYAUTH:-$(bash "$REG_ROOT/hack/gotool.sh" registryauth)}
  OCIREGISTRY=${MEMBRANE_OCIREGISTRY:-$(bash "$REG_ROOT/hack/gotool.sh" ociregistry)}
}

# ociregistry_start DIR [-raw-referrers]: go-containerregistry's registry with the OCI 1.1
# referrers API (plain HTTP, no auth; hack/ociregistry), which distribution lacks: cosign v3 then
# writes its bundles as referrers, not under the referrers tag fallback. Its referrers answer as
# the OCI spec says (each referrer's artifactType the manifest's), or with -raw-referrers as
# go-containerregistry answers (the config's media type). Blobs in DIR/blobs, log
# DIR/ociregistry.log; sets OCI_HOST (127.0.0.1:PORT) and OCI_PID
ociregistry_start() {
  local i
  mkdir -p "$1"
  "$OCIREGISTRY" -listen 127.0.0.1:0 -disk "$1/blobs" "${@:2}" >"$1/ociregistry.out" 2>"$1/ociregistry.log" &
  OCI_PID=$!
  for i in $(seq 1 100); do grep -q listening "$1/ociregistry.out" 2>/dev/null && break; sleep 0.1; done
  OCI_HOST=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$1/ociregistry.out")
  [ -n "$OCI_HOST" ] || { echo "ociregistry_start: it does not listen: $(cat "$1/ociregistry.log")" >&2; return 1; }
}

# registry_pki DIR: DIR/ca.crt (a test CA, ECDSA P-256), DIR/server.{crt,key} (127.0.0.1 and
# localhost, signed by it) and DIR/token.{crt,key} (the token server's signing key, self-signed:
# the registry's rootcertbundle)
registry_pki() {
  local d=$1
  mkdir -p "$d"
  test_ca "$d" ca
  test_server_cert "$d" server ca
  openssl ecparam -name prime256v1 -genkey -noout -out "$d/token.key" 2>/dev/null
  openssl req -x509 -new -key "$d/token.key" -subj "/CN=registry-token-signer" -days 1 -sha256 -out "$d/token.crt" 2>/dev/null
}

# registry_start DIR SCHEME AUTH [PORT]: the registry on 127.0.0.1 (PORT, or a free one), its
# storage in DIR/data, config in DIR/config.yml, log in DIR/registry.log. SCHEME https needs
# registry_pki DIR/pki first. AUTH htpasswd: REG_USER/REG_PASS in DIR/htpasswd (bcrypt);
# token: the same credentials at the token server (registryauth, DIR/token.log) that the
# registry's Bearer challenge names as realm. Sets REG_HOST (127.0.0.1:PORT), REG_PORT,
# REG_URL, REG_PID (and TOKEN_PID, TOKEN_URL); waits until /v2/ answers (10 s at most).
registry_start() {
  local dir=$1 scheme=$2 auth=$3 i tls="" authcfg=""
  REG_PORT=${4:-$(free_port)}
  REG_HOST="127.0.0.1:$REG_PORT"
  REG_URL="$scheme://$REG_HOST"
  REG_USER=${REG_USER:-membrane}
  REG_PASS=${REG_PASS:-$(openssl rand -hex 12)}
  mkdir -p "$dir/data"
  [ "$scheme" = http ] || tls="
  tls: {certificate: $dir/pki/server.crt, key: $dir/pki/server.key}"
  [ "$auth" = token ] || TOKEN_PID="" TOKEN_URL=""
  case $auth in
    none) ;;
    htpasswd)
      "$REGISTRYAUTH" htpasswd "$REG_USER" "$REG_PASS" >"$dir/htpasswd"
      authcfg="auth: {htpasswd: {realm: membrane-test, path: $dir/htpasswd}}" ;;
    token)
      if [ -z "${TOKEN_URL:-}" ] || ! kill -0 "${TOKEN_PID:-0}" 2>/dev/null; then
        local tokflags=()
        [ "$scheme" = http ] || tokflags=(-tls-cert "$dir/pki/server.crt" -tls-key "$dir/pki/server.key")
        "$REGISTRYAUTH" token -listen 127.0.0.1:0 -cert "$dir/pki/token.crt" -key "$dir/pki/token.key" \
          -user "$REG_USER" -password "$REG_PASS" -issuer membrane-test-issuer -service membrane-test-registry \
          "${tokflags[@]}" >"$dir/token.out" 2>"$dir/token.log" &
        TOKEN_PID=$!
        for i in $(seq 1 100); do grep -q listening "$dir/token.out" 2>/dev/null && break; sleep 0.1; done
        TOKEN_URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$dir/token.out")
        [ -n "$TOKEN_URL" ] || { echo "registry_start: the token server does not listen: $(cat "$dir/token.log")" >&2; return 1; }
      fi
      # the realm names the token server as localhost: go-containerregistry (crane, cosign)
      # refuses a realm whose host is a loopback or private IP literal unless it is the
      # registry's own host:port (an SSRF guard), and checks no names
      authcfg="auth:
  token: {realm: ${TOKEN_URL/127.0.0.1/localhost}/token, service: membrane-test-registry, issuer: membrane-test-issuer,
          rootcertbundle: $dir/pki/token.crt}" ;;
    *) echo "registry_start: AUTH is none, htpasswd or token, not '$auth'" >&2; return 2 ;;
  esac
  cat >"$dir/config.yml" <<EOF
version: 0.1
log: {level: info, accesslog: {disabled: false}}
storage:
  filesystem: {rootdirectory: $dir/data}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http:
  addr: $REG_HOST
  secret: membrane-test-secret$tls
$authcfg
EOF
  "$REGISTRY_BIN" serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 &
  REG_PID=$!
  REG_DIR=$dir
  REG_CA=""
  [ "$scheme" = http ] || REG_CA="$dir/pki/ca.crt"
  for i in $(seq 1 100); do
    case $(curl -s -o /dev/null -w '%{http_code}' ${REG_CA:+--cacert "$REG_CA"} "$REG_URL/v2/") in
      200 | 401) break ;;
    esac
    kill -0 "$REG_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$REG_PID" 2>/dev/null || { echo "registry_start: the registry exited: $(tail -5 "$dir/registry.log")" >&2; return 1; }
  # what registry_use brings back, when several registries run at once
  local v
  for v in REG_HOST REG_PORT REG_URL REG_PID REG_DIR REG_CA REG_USER REG_PASS TOKEN_PID TOKEN_URL; do
    printf '%s=%q\n' "$v" "${!v:-}"
  done >"$dir/env"
  # the clients' credentials: crane and cosign read DOCKER_CONFIG/config.json
  mkdir -p "$dir/docker"
  if [ "$auth" = none ]; then
    printf '{"auths":{}}\n' >"$dir/docker/config.json"
  else
    printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$REG_HOST" "$(printf '%s:%s' "$REG_USER" "$REG_PASS" | base64 -w0)" >"$dir/docker/config.json"
  fi
}

# registry_use DIR: the registry started in DIR (registry_start) is the one REG_* name again
registry_use() {
  source "$1/env"
}

# registry_stop: the registry (and its token server) stopped; its storage and port stay
registry_stop() {
  [ -z "${REG_PID:-}" ] || { kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; }
  [ -z "${TOKEN_PID:-}" ] || { kill "$TOKEN_PID" 2>/dev/null || true; wait "$TOKEN_PID" 2>/dev/null || true; }
  REG_PID="" TOKEN_PID="" TOKEN_URL=""
}

# ociregistry_stop: the ociregistry stopped (its manifests, in memory, are gone)
ociregistry_stop() {
  [ -z "${OCI_PID:-}" ] || { kill "$OCI_PID" 2>/dev/null || true; wait "$OCI_PID" 2>/dev/null || true; }
  OCI_PID=""
}

# reg_crane ARGS...: crane trusting the registry's CA (SSL_CERT_FILE: Go reads it on Linux) and
# with its credentials (DOCKER_CONFIG); loopback HTTP needs no flag, crane speaks plain HTTP
# to 127.0.0.1 by itself
reg_crane() {
  env DOCKER_CONFIG="$REG_DIR/docker" ${REG_CA:+SSL_CERT_FILE="$REG_CA"} "$CRANE" "$@"
}

# reg_cosign v2|v3 ARGS...: cosign likewise; --allow-http-registry and --allow-insecure-registry
# belong to the subcommands and are added by cosign_sign/cosign_attest
reg_cosign() {
  local bin
  case $1 in v2) bin=$COSIGN_V2 ;; v3) bin=$COSIGN_V3 ;; *) echo "reg_cosign: v2 or v3, not '$1'" >&2; return 2 ;; esac
  shift
  # no TUF root is fetched for key-based signing without a transparency log; these keep any
  # cache or fetch out of the way all the same: a private home, no sigstore cache
  env DOCKER_CONFIG="$REG_DIR/docker" ${REG_CA:+SSL_CERT_FILE="$REG_CA"} HOME="$REG_DIR/home" \
    TUF_ROOT="$REG_DIR/home/tuf" SIGSTORE_NO_CACHE=true "$bin" "$@"
}

# image_push REPO [TAG]: a small random image (one layer of 1 KiB of random bytes on the empty
# OCI base) pushed to the registry as REPO:TAG (TAG default: a random one); prints its digest
image_push() {
  local repo=$1 tag=${2:-t$(openssl rand -hex 6)} tmp
  tmp=$(mktemp -d "$REG_DIR/push.XXXXXX")
  head -c 1024 /dev/urandom >"$tmp/random"
  tar -C "$tmp" -cf "$tmp/layer.tar" random
  reg_crane append --oci-empty-base -f "$tmp/layer.tar" -t "$REG_HOST/$repo:$tag" >/dev/null 2>"$tmp/log" ||
    { cat "$tmp/log" >&2; rm -rf "$tmp"; return 1; }
  rm -rf "$tmp"
  reg_crane digest "$REG_HOST/$repo:$tag"
}

# cosign_keys DIR: key pairs cosign signs with, each KEY.key (cosign's encrypted format, empty
# password) and KEY.pub (PEM): p256 (cosign generate-key-pair: ECDSA P-256), and, made by openssl
# and brought in with cosign import-key-pair, p384 (ECDSA P-384), rsa (RSA 2048), ed25519, and
# other (ECDSA P-256, a second signer that nobody trusts)
cosign_keys() {
  local d=$1 k
  mkdir -p "$d"
  (cd "$d" && reg_cosign v2 generate-key-pair --output-key-prefix p256 >/dev/null 2>&1)
  (cd "$d" && reg_cosign v2 generate-key-pair --output-key-prefix other >/dev/null 2>&1)
  openssl ecparam -name secp384r1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$d/p384.pem"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/rsa.pem" 2>/dev/null
  openssl genpkey -algorithm ed25519 -out "$d/ed25519.pem" 2>/dev/null
  for k in p384 rsa ed25519; do
    (cd "$d" && reg_cosign v2 import-key-pair --key "$k.pem" --output-key-prefix "$k" >/dev/null 2>&1) ||
      { echo "cosign_keys: cosign import-key-pair refused the $k key" >&2; return 1; }
  done
  [ -s "$d/p256.pub" ] && [ -s "$d/other.pub" ] || { echo "cosign_keys: cosign generate-key-pair made no key in $d" >&2; return 1; }
}
