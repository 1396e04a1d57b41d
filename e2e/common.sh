# What the e2e scenarios (through e2e/lib.sh) and hack/demo.sh share: the
# Deployment the governed API runs as, the governed API double, Prometheus
# scraping it, the steady user traffic, and the slo check's RED objectives.
# Functions only: sourcing it starts nothing and needs no cluster.

# digest TEXT: a good image digest, named by TEXT (e2e/lib.sh has the markers kwok acts on)
digest() { printf 'sha256:%s' "$(printf '%s' "$1" | sha256sum | cut -c1-64)"; }

# free_port: a free TCP port on loopback
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# test_ca DIR NAME: DIR/NAME.key and DIR/NAME.crt, a self-signed test CA (ECDSA P-256, valid one day)
test_ca() {
  mkdir -p "$1"
  openssl ecparam -name prime256v1 -genkey -noout -out "$1/$2.key" 2>/dev/null
  openssl req -x509 -new -key "$1/$2.key" -subj "/CN=membrane-test-$2" -days 1 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" -out "$1/$2.crt" 2>/dev/null
}

# test_server_cert DIR NAME CA: DIR/NAME.key and DIR/NAME.crt, a server certificate for 127.0.0.1 and
# localhost signed by the test CA DIR/CA.{key,crt}
test_server_cert() {
  openssl ecparam -name prime256v1 -genkey -noout -out "$1/$2.key" 2>/dev/null
  openssl req -new -key "$1/$2.key" -subj "/CN=$2" -out "$1/$2.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$1/$2.ext"
  openssl x509 -req -in "$1/$2.csr" -CA "$1/$3.crt" -CAkey "$1/$3.key" -CAcreateserial -days 1 -sha256 \
    -extfile "$1/$2.ext" -out "$1/$2.crt" 2>/dev/null
}

# default_deny NS: a NetworkPolicy selecting every pod of NS that allows no ingress (the trust membrane holds there)
default_deny() {
  kubectl -n "$1" apply -f - >/dev/null <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny}
spec: {podSelector: {}, policyTypes: [Ingress]}
EOF
}

# deployment_yaml NAME IMAGE [REPLICAS] [SPEC]: a Deployment whose one container "api" runs IMAGE
# (REPLICAS default 3); SPEC: more lines of its spec, indented 2 spaces
deployment_yaml() {
  cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1}
spec:
  replicas: ${3:-3}
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec:
      containers:
      - {name: api, image: "$2"}
${4:-}
EOF
}

# double_start BINARY OUT [flags...]: the governed API double (e2e/double) on a free loopback
# port, its stdout in OUT.out and its log in OUT.log; sets DOUBLE_PID and, once it listens
# (10 s at most, or it fails), DOUBLE_URL
double_start() {
  local bin=$1 out=$2 i
  shift 2
  "$bin" --listen 127.0.0.1:0 "$@" >"$out.out" 2>"$out.log" &
  DOUBLE_PID=$!
  for i in $(seq 1 100); do
    grep -q listening "$out.out" 2>/dev/null && break
    sleep 0.1
  done
  DOUBLE_URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$out.out")
  [ -n "$DOUBLE_URL" ] || { echo "double_start: the double does not listen: $(cat "$out.log")" >&2; return 1; }
}

# prometheus_start BINARY DIR TARGET: Prometheus on a free loopback port scraping TARGET
# (host:port, the double's /metrics) every second; its config, data and log (prometheus.log)
# in DIR; sets PROM_URL and PROM_PID
prometheus_start() {
  local port
  port=$(free_port)
  PROM_URL="http://127.0.0.1:$port"
  cat >"$2/prometheus.yml" <<EOF
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: governed-api
    static_configs: [{targets: ["$3"]}]
EOF
  "$1" --config.file="$2/prometheus.yml" --storage.tsdb.path="$2/prometheus-data" \
    --web.listen-address="127.0.0.1:$port" --log.level=warn >"$2/prometheus.log" 2>&1 &
  PROM_PID=$!
}

# prometheus_sees PROM_URL DIGEST: Prometheus has scraped the user traffic of DIGEST (more
# than 5 requests a second over 5 s)
prometheus_sees() {
  [ "$(curl -fsS -G --max-time 5 --data-urlencode "query=sum(rate(http_requests_total{digest=\"$2\"}[5s])) > 5" \
    "$1/api/v1/query" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["data"]["result"]))')" = 1 ]
}

# load_start URL ERR [curl flags...]: the user traffic, on one connection at most 20 requests a
# second without X-Request-ID (the double fails or slows only those), its errors in ERR; sets LOAD_PID
load_start() {
  local url=$1 err=$2
  shift 2
  curl -s --rate 20/s "$@" "$url/api/v1/stac/items?n=[1-1000000]" >/dev/null 2>"$err" &
  LOAD_PID=$!
}

# release_yaml NAME DEPLOYMENT REPOSITORY DIGEST CHANGE ROLLOUT [SPEC]: a GovernedAPIRelease in
# staging, change record CHANGE, rolling container "api" of DEPLOYMENT to REPOSITORY@DIGEST;
# ROLLOUT: spec.rollout's fields ("observationSeconds: 5, progressDeadlineSeconds: 120"); SPEC:
# more lines of its spec (verification, ...), indented 2 spaces; IMAGE_VERIFY, when set: the fields
# of spec.image.verify in flow style ("publicKeySecretRef: {name: cosign-pub, key: cosign.pub}")
release_yaml() {
  local verify=""
  [ -z "${IMAGE_VERIFY:-}" ] || verify=", verify: {$IMAGE_VERIFY}"
  cat <<EOF
apiVersion: governance.kfm.dev/v1alpha1
kind: GovernedAPIRelease
metadata: {name: $1}
spec:
  environment: staging
  changeRecord: "$5"
  target: {deployment: $2, container: api}
  image: {repository: $3, digest: "$4"$verify}
  rollout: {$6}
${7:-}
EOF
}

# slo_red_yaml PROM_URL: spec.verification.slo (indented 4 spaces) with the RED objectives over
# the double's metrics for the digest the Deployment runs, over 30 s: error-rate <= 1 %, latency-p99 <= 0.5 s
slo_red_yaml() {
  cat <<EOF
    slo:
      prometheusURL: "$1"
      windowSeconds: 30
      objectives:
        - name: error-rate
          query: 'sum(rate(http_requests_total{code=~"5..",digest="{{digest}}"}[{{window}}])) / sum(rate(http_requests_total{digest="{{digest}}"}[{{window}}]))'
          max: 0.01
        - name: latency-p99
          query: 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{digest="{{digest}}"}[{{window}}])))'
          max: 0.5
EOF
}
