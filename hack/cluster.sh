#!/usr/bin/env bash
# A real local Kubernetes control plane on loopback for membrane's integration
# tests, e2e and demo: etcd, kube-apiserver (TLS, RBAC, service-account tokens,
# the default admission plugins), kube-controller-manager, kube-scheduler and
# kwok with fake nodes whose pods become Running/Ready. Each instance lives in
# its own directory (MEMBRANE_CLUSTER_DIR) on free ports, so several can run
# side by side; `down` stops only the processes that instance started.
#
#   hack/cluster.sh up                    start (or reuse) and wait until ready
#   hack/cluster.sh down                  stop this instance's processes
#   hack/cluster.sh env                   print exports (KUBECONFIG, PATH, ...)
#   hack/cluster.sh restart COMPONENT     kill and start one component again
#   hack/cluster.sh stop|start COMPONENT  stop or start one component
#   hack/cluster.sh compact               compact etcd to its current revision
#   hack/cluster.sh sa-kubeconfig NS SA OUT [DURATION]
#                                         a kubeconfig with a ServiceAccount token
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
dir=${MEMBRANE_CLUSTER_DIR:-$repo/.cache/cluster}
NODES=${MEMBRANE_CLUSTER_NODES:-3}
components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

die() { echo "cluster.sh: $*" >&2; exit 1; }

bin_dir() { bash "$here/controlplane.sh"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pid_alive() { [ -f "$dir/run/$1.pid" ] && kill -0 "$(cat "$dir/run/$1.pid")" 2>/dev/null; }

# --- PKI -------------------------------------------------------------------

cert() { # name subject [client|server] [sans]
  local name=$1 subj=$2 usage=$3 sans=${4:-}
  local ext="$dir/pki/$name.ext"
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/pki/$name.key" 2>/dev/null
  openssl req -new -key "$dir/pki/$name.key" -subj "$subj" -out "$dir/pki/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ "$usage" = server ]; then echo "extendedKeyUsage=serverAuth"; echo "subjectAltName=$sans"
    else echo "extendedKeyUsage=clientAuth"; fi
  } > "$ext"
  openssl x509 -req -in "$dir/pki/$name.csr" -CA "$dir/pki/ca.crt" -CAkey "$dir/pki/ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile "$ext" -out "$dir/pki/$name.crt" 2>/dev/null
  rm -f "$dir/pki/$name.csr" "$ext"
}

make_pki() {
  [ -f "$dir/pki/done" ] && return
  mkdir -p "$dir/pki"
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/pki/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$dir/pki/ca.key" -subj "/CN=membrane-local-ca" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$dir/pki/ca.crt" 2>/dev/null
  cert apiserver "/CN=kube-apiserver" server \
    "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin "/O=system:masters/CN=membrane-admin" client
  cert controller-manager "/CN=system:kube-controller-manager" client
  cert scheduler "/CN=system:kube-scheduler" client
  cert kwok "/O=system:masters/CN=kwok" client
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/pki/sa.key" 2>/dev/null
  openssl ec -in "$dir/pki/sa.key" -pubout -out "$dir/pki/sa.pub" 2>/dev/null
  touch "$dir/pki/done"
}

kubeconfig() { # name user
  local name=$1 port
  port=$(cat "$dir/run/apiserver.port")
  cat > "$dir/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: membrane-local
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority: $dir/pki/ca.crt
users:
- name: $name
  user:
    client-certificate: $dir/pki/$name.crt
    client-key: $dir/pki/$name.key
contexts:
- name: membrane-local
  context: {cluster: membrane-local, user: $name, namespace: default}
current-context: membrane-local
EOF
}

# --- components ------------------------------------------------------------

start() { # component
  local c=$1 bin port
  bin=$(bin_dir)
  pid_alive "$c" && return
  local args=()
  case $c in
    etcd)
      args=(--name default --data-dir "$dir/etcd"
        --listen-client-urls "http://127.0.0.1:$(cat "$dir/run/etcd.port")"
        --advertise-client-urls "http://127.0.0.1:$(cat "$dir/run/etcd.port")"
        --listen-peer-urls "http://127.0.0.1:$(cat "$dir/run/etcd-peer.port")"
        --initial-advertise-peer-urls "http://127.0.0.1:$(cat "$dir/run/etcd-peer.port")"
        --initial-cluster "default=http://127.0.0.1:$(cat "$dir/run/etcd-peer.port")"
        --listen-metrics-urls "" --unsafe-no-fsync --log-level warn) ;;
    kube-apiserver)
      args=(--etcd-servers "http://127.0.0.1:$(cat "$dir/run/etcd.port")"
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --endpoint-reconciler-type none
        --secure-port "$(cat "$dir/run/apiserver.port")"
        --cert-dir "$dir/pki" --tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key"
        --client-ca-file "$dir/pki/ca.crt"
        --authorization-mode RBAC
        --service-account-issuer https://kubernetes.default.svc.cluster.local
        --service-account-key-file "$dir/pki/sa.pub" --service-account-signing-key-file "$dir/pki/sa.key"
        --api-audiences https://kubernetes.default.svc.cluster.local
        --service-cluster-ip-range 10.96.0.0/16 --allow-privileged
        --enable-admission-plugins NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,ResourceQuota,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy
        --profiling=false --v=1) ;;
    kube-controller-manager)
      args=(--kubeconfig "$dir/controller-manager.kubeconfig"
        --authentication-kubeconfig "$dir/controller-manager.kubeconfig"
        --authorization-kubeconfig "$dir/controller-manager.kubeconfig"
        --bind-address 127.0.0.1 --secure-port "$(cat "$dir/run/controller-manager.port")"
        --controllers '*,-node-ipam-controller,-persistentvolume-binder-controller,-persistentvolume-attach-detach-controller,-persistentvolume-expander-controller'
        --service-account-private-key-file "$dir/pki/sa.key" --root-ca-file "$dir/pki/ca.crt"
        --use-service-account-credentials=true --leader-elect=false --profiling=false --v=1) ;;
    kube-scheduler)
      args=(--kubeconfig "$dir/scheduler.kubeconfig"
        --authentication-kubeconfig "$dir/scheduler.kubeconfig"
        --authorization-kubeconfig "$dir/scheduler.kubeconfig"
        --bind-address 127.0.0.1 --secure-port "$(cat "$dir/run/scheduler.port")"
        --leader-elect=false --profiling=false --v=1) ;;
    kwok)
      args=(--kubeconfig "$dir/kwok.kubeconfig" --manage-all-nodes=false
        --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake
        --node-ip 127.0.0.1 --node-port 0 --cidr 10.244.0.1/16 --node-lease-duration-seconds 40
        --server-address "127.0.0.1:$(cat "$dir/run/kwok.port")"
        --config "$bin/kwok-stages.yaml") ;;
    *) die "unknown component $c (one of: ${components[*]})" ;;
  esac
  nohup "$bin/$c" "${args[@]}" >> "$dir/logs/$c.log" 2>&1 < /dev/null &
  echo $! > "$dir/run/$c.pid"
}

stop() { # component
  local c=$1 pid i
  [ -f "$dir/run/$c.pid" ] || return 0
  pid=$(cat "$dir/run/$c.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/run/$c.pid"
}

admin_curl() {
  curl -sS --max-time 5 --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" \
    "https://127.0.0.1:$(cat "$dir/run/apiserver.port")$1"
}

wait_for() { # what seconds command...   (what: a component name, or a description)
  local what=$1 secs=$2 i; shift 2
  for i in $(seq 1 $((secs * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if [ -f "$dir/run/$what.pid" ] && ! pid_alive "$what"; then
      tail -5 "$dir/logs/$what.log" >&2
      die "$what exited; see $dir/logs/$what.log"
    fi
    sleep 0.2
  done
  die "$what did not become ready within ${secs}s; see $dir/logs/"
}

apiserver_ready() { [ "$(admin_curl /readyz)" = ok ]; }

create_nodes() {
  local kubectl="$(bin_dir)/kubectl" i
  for i in $(seq 0 $((NODES - 1))); do
    cat <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64}
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
---
EOF
  done | KUBECONFIG="$dir/admin.kubeconfig" "$kubectl" apply -f - >/dev/null
}

nodes_ready() {
  local n
  n=$(KUBECONFIG="$dir/admin.kubeconfig" "$(bin_dir)/kubectl" get nodes \
        -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)
  [ "$n" -ge "$NODES" ]
}

up() {
  bin_dir > /dev/null
  mkdir -p "$dir/run" "$dir/logs"
  make_pki
  for p in etcd etcd-peer apiserver controller-manager scheduler kwok; do
    [ -f "$dir/run/$p.port" ] || free_port > "$dir/run/$p.port"
  done
  for n in admin controller-manager scheduler kwok; do kubeconfig "$n"; done
  start etcd
  wait_for etcd 30 curl -sf "http://127.0.0.1:$(cat "$dir/run/etcd.port")/health"
  start kube-apiserver
  wait_for kube-apiserver 60 apiserver_ready
  start kube-controller-manager
  start kube-scheduler
  start kwok
  create_nodes
  wait_for "kwok nodes" 60 nodes_ready
  # the default ServiceAccount appears once the controller manager runs
  wait_for "service accounts" 30 env KUBECONFIG="$dir/admin.kubeconfig" "$(bin_dir)/kubectl" get serviceaccount default -n default
}

down() {
  local i
  for ((i = ${#components[@]} - 1; i >= 0; i--)); do stop "${components[$i]}"; done
}

compact() {
  local port rev
  port=$(cat "$dir/run/etcd.port")
  rev=$(curl -sS -X POST "http://127.0.0.1:$port/v3/kv/range" -d '{"key":"AA=="}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
  curl -sS -X POST "http://127.0.0.1:$port/v3/kv/compaction" -d "{\"revision\":\"$rev\",\"physical\":true}" >/dev/null
  echo "$rev"
}

sa_kubeconfig() { # ns sa out [duration]
  local ns=$1 sa=$2 out=$3 duration=${4:-24h} token
  token=$(KUBECONFIG="$dir/admin.kubeconfig" "$(bin_dir)/kubectl" create token "$sa" -n "$ns" --duration "$duration")
  cat > "$out" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: membrane-local
  cluster:
    server: https://127.0.0.1:$(cat "$dir/run/apiserver.port")
    certificate-authority: $dir/pki/ca.crt
users:
- name: $ns-$sa
  user:
    token: $token
contexts:
- name: $ns-$sa
  context: {cluster: membrane-local, user: $ns-$sa, namespace: $ns}
current-context: $ns-$sa
EOF
}

cmd=${1:-}
case $cmd in
  up) up ;;
  down) down ;;
  env)
    [ -f "$dir/admin.kubeconfig" ] || die "no cluster in $dir; run hack/cluster.sh up"
    echo "export KUBECONFIG=$dir/admin.kubeconfig"
    echo "export MEMBRANE_CLUSTER_DIR=$dir"
    echo "export PATH=$(bin_dir):\$PATH" ;;
  restart) [ -n "${2:-}" ] || die "usage: restart COMPONENT"; stop "$2"; start "$2"
    [ "$2" != kube-apiserver ] || wait_for kube-apiserver 60 apiserver_ready ;;
  stop) [ -n "${2:-}" ] || die "usage: stop COMPONENT"; stop "$2" ;;
  start) [ -n "${2:-}" ] || die "usage: start COMPONENT"; start "$2"
    [ "$2" != kube-apiserver ] || wait_for kube-apiserver 60 apiserver_ready ;;
  compact) compact ;;
  sa-kubeconfig) [ $# -ge 4 ] || die "usage: sa-kubeconfig NS SA OUT [DURATION]"; sa_kubeconfig "$2" "$3" "$4" "${5:-24h}" ;;
  *) die "usage: hack/cluster.sh up|down|env|restart C|stop C|start C|compact|sa-kubeconfig NS SA OUT" ;;
esac
