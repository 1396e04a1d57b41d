#!/usr/bin/env bash
# Checks the images hack/image.sh assembles as OCI layouts (no container engine
# here) and the static binary in membrane's:
#   - membrane: one layer holding exactly /membrane and the CA bundle
#     /etc/ssl/certs/ca-certificates.crt, no shell; entrypoint /membrane, user
#     65532:65532, the org.opencontainers.image.* labels with this version and
#     the source; every file dated 1970-01-01 and owned by 0:0; the same digest
#     from a second run (reproducible);
#   - the binary taken out of the layer is static: it runs `version` in a chroot
#     of the layer alone (no shared library there) and names its libraries, its
#     libcurl speaks http and https only, and it resolves "localhost" (from the
#     /etc/hosts a kubelet mounts) and "kubernetes.default.svc" (by DNS) and
#     reaches the local control plane over TLS with the CA in its kubeconfig:
#     its /readyz answers 200 once its caches have synced;
#   - the decision-test OPA image: hack/image.sh gives the digest that
#     charts/membrane/values.yaml and manifests/opa/kustomization.yaml pin,
#     and helm template and kubectl kustomize render the OPA Deployment with
#     ghcr.io/kfm/membrane-opa@<that digest>.
# Needs KUBECONFIG (admin), kubectl, go (crane, OPA and helm are built by the
# hack scripts, cached), root (chroot). MEMBRANE_STATIC_BIN names a static
# binary already built (hack/test.sh builds it with hack/static.sh first);
# without it hack/static.sh builds one.
source "$(dirname "$0")/lib.sh"
need_cluster test_image
[ "$(id -u)" -eq 0 ] || { echo "FAIL test_image: runs the image's binary in a chroot, which needs root"; exit 1; }

version=$(sed -n 's/^project(membrane VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
images() { MEMBRANE_IMAGE_DIR="$1" bash hack/image.sh 2>"$tmp/image.err"; }
if ! images "$tmp/a" > "$tmp/digests-a"; then
  echo "FAIL test_image: hack/image.sh failed: $(tail -20 "$tmp/image.err")"
  exit 1
fi
ok "hack/image.sh assembles both images: $(tr '\n' ' ' < "$tmp/digests-a")"

# layout DIR: unpacks the OCI layout's one manifest: $tmp/<name>.{manifest,config}.json, layers
cat > "$tmp/layout.py" <<'PY'
import hashlib, json, os, sys
layout, dest = sys.argv[1], sys.argv[2]
def blob(d):
    algo, hexd = d.split(":")
    data = open(os.path.join(layout, "blobs", algo, hexd), "rb").read()
    assert hashlib.sha256(data).hexdigest() == hexd, "blob " + d + " does not match its digest"
    return data
index = json.load(open(os.path.join(layout, "index.json")))
assert len(index["manifests"]) == 1, "index.json has %d manifests" % len(index["manifests"])
m = index["manifests"][0]
manifest = json.loads(blob(m["digest"]))
config = json.loads(blob(manifest["config"]["digest"]))
json.dump(manifest, open(dest + ".manifest.json", "w"))
json.dump(config, open(dest + ".config.json", "w"))
for i, l in enumerate(manifest["layers"]):
    open("%s.layer%d.tar.gz" % (dest, i), "wb").write(blob(l["digest"]))
print(m["digest"])
PY
for name in membrane opa; do
  if python3 "$tmp/layout.py" "$tmp/a/$name" "$tmp/$name" > "$tmp/$name.digest" 2>"$tmp/out"; then
    ok "$name: the OCI layout has one manifest and every blob matches its digest"
  else
    fail "$name: the OCI layout has one manifest and every blob matches its digest" "$(cat "$tmp/out")"
  fi
done

# config CONFIG.json: prints the fields judged, one a line
cat > "$tmp/config.py" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); m = json.load(open(sys.argv[2]))
cc = c.get("config", {})
print("entrypoint", json.dumps(cc.get("Entrypoint")))
print("cmd", json.dumps(cc.get("Cmd")))
print("user", cc.get("User"))
print("platform", c.get("os"), c.get("architecture"))
print("layers", len(m.get("layers", [])), len(c.get("rootfs", {}).get("diff_ids", [])))
for k, v in sorted((cc.get("Labels") or {}).items()):
    print("label", k + "=" + v)
PY
python3 "$tmp/config.py" "$tmp/membrane.config.json" "$tmp/membrane.manifest.json" > "$tmp/membrane.fields" 2>&1 || true
want_field() { # image line description
  if grep -qxF "$2" "$tmp/$1.fields"; then ok "$1: $3"; else fail "$1: $3" "want \"$2\"; config: $(tr '\n' ';' < "$tmp/$1.fields")"; fi
}
want_field membrane 'entrypoint ["/membrane"]' "entrypoint /membrane"
want_field membrane 'cmd ["run"]' "command run"
want_field membrane 'user 65532:65532' "user 65532:65532"
want_field membrane 'platform linux amd64' "linux/amd64"
want_field membrane 'layers 1 1' "exactly one layer"
want_field membrane "label org.opencontainers.image.version=$version" "label org.opencontainers.image.version=$version"
want_field membrane "label org.opencontainers.image.source=https://github.com/kfm/membrane" "label org.opencontainers.image.source"
want_field membrane "label org.opencontainers.image.title=membrane" "label org.opencontainers.image.title"

# the layer: exactly the binary and the CA bundle (and their directories), no shell
tar -tvzf "$tmp/membrane.layer0.tar.gz" > "$tmp/membrane.list" 2>"$tmp/out" || fail "membrane: the layer is a gzipped tar" "$(cat "$tmp/out")"
files=$(awk '{print $6}' "$tmp/membrane.list" | sed 's|^\./||; /^$/d' | sort | tr '\n' ' ')
want="etc/ etc/ssl/ etc/ssl/certs/ etc/ssl/certs/ca-certificates.crt membrane "
if [ "$files" = "$want" ]; then ok "membrane: the layer holds /membrane and /etc/ssl/certs/ca-certificates.crt only"; else fail "membrane: the layer holds /membrane and /etc/ssl/certs/ca-certificates.crt only" "got: $files"; fi
if grep -qE '(^|/)(sh|bash|dash|ash|busybox)$' <(awk '{print $6}' "$tmp/membrane.list"); then
  fail "membrane: no shell in the layer" "$(grep -E '(sh|bash|busybox)$' "$tmp/membrane.list")"
else
  ok "membrane: no shell in the layer"
fi
if awk '$2 != "0/0" || $4 != "1970-01-01" {bad=1} END {exit bad}' "$tmp/membrane.list"; then
  ok "membrane: every file of the layer is owned by 0:0 and dated 1970-01-01"
else
  fail "membrane: every file of the layer is owned by 0:0 and dated 1970-01-01" "$(head -5 "$tmp/membrane.list")"
fi
if grep -E ' (\./)?membrane$' "$tmp/membrane.list" | grep -q '^-rwxr-xr-x'; then
  ok "membrane: /membrane is executable (0755)"
else
  fail "membrane: /membrane is executable (0755)" "$(grep membrane "$tmp/membrane.list")"
fi
if cmp -s "$tmp/membrane.layer0.tar.gz" /dev/null; then fail "membrane: the layer is not empty"; fi

# reproducible: a second run gives the same digests
if images "$tmp/b" > "$tmp/digests-b" && cmp -s "$tmp/digests-a" "$tmp/digests-b"; then
  ok "hack/image.sh is reproducible: a second run gives the same digests"
else
  fail "hack/image.sh is reproducible: a second run gives the same digests" "$(cat "$tmp/digests-a" "$tmp/digests-b" "$tmp/image.err")"
fi

# the binary out of the image, alone in a chroot of the layer
root="$tmp/root"
mkdir -p "$root"
tar -xzf "$tmp/membrane.layer0.tar.gz" -C "$root"
if chroot "$root" /membrane version > "$tmp/version" 2>&1; then
  ok "membrane: the image's /membrane runs \`version\` in a chroot of its layer alone (no shared libraries)"
else
  fail "membrane: the image's /membrane runs \`version\` in a chroot of its layer alone (no shared libraries)" "$(cat "$tmp/version")"
fi
for want in "membrane $version" "linked: static" "libcurl protocols: http https"; do
  if grep -qxF "$want" "$tmp/version"; then ok "membrane version: \"$want\""; else fail "membrane version: \"$want\"" "$(cat "$tmp/version")"; fi
done
if grep -qE '^libraries: libcurl [0-9.]+ \(OpenSSL/[0-9.]+\), OpenSSL [0-9.]+.*, libarchive [0-9.]+ zlib/[0-9.]+, cJSON [0-9.]+, libyaml [0-9.]+, libwebsockets [0-9.]+' "$tmp/version" &&
   ! grep -E '^libraries:' "$tmp/version" | grep -qE 'liblzma|bz2lib|libzstd|liblz4|libxml2|expat|nettle'; then
  ok "membrane version: the libraries line names libcurl on OpenSSL, OpenSSL, libarchive with zlib alone, cJSON, libyaml, libwebsockets"
else
  fail "membrane version: the libraries line names libcurl on OpenSSL, OpenSSL, libarchive with zlib alone, cJSON, libyaml, libwebsockets" "$(grep libraries "$tmp/version")"
fi
if grep -qE '^debian sources: curl [^,]+, libarchive [^,]+, cjson [^,]+, openssl [^,]+, libyaml [^,]+, libwebsockets ' "$tmp/version"; then
  ok "membrane version: the Debian source versions of the static libraries"
else
  fail "membrane version: the Debian source versions of the static libraries" "$(cat "$tmp/version")"
fi

# name resolution and TLS in the static binary, with the control plane's CA from
# the kubeconfig: "localhost" from the /etc/hosts a kubelet mounts (glibc's
# built-in files lookup), and "kubernetes.default.svc" from a DNS server named
# in /etc/resolv.conf (glibc's built-in dns lookup; here a stand-in on a
# loopback address that answers 127.0.0.1 for that name alone). The device
# nodes every container runtime gives a container (libwebsockets seeds itself
# from /dev/urandom).
mkdir -p "$root/etc" "$root/tmp" "$root/dev"
for dev in null:3 zero:5 random:8 urandom:9; do
  mknod -m 666 "$root/dev/${dev%:*}" c 1 "${dev#*:}" 2>"$tmp/out" ||
    fail "mknod $root/dev/${dev%:*} (the device a container runtime gives)" "$(cat "$tmp/out")"
done
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n' > "$root/etc/hosts"
dns_ip=127.0.0.153 # not 127.0.0.53, where a systemd-resolved may listen
printf 'nameserver %s\noptions timeout:1 attempts:2\n' "$dns_ip" > "$root/etc/resolv.conf"
cat > "$tmp/dns.py" <<'PY'
# A DNS stand-in for the test: A kubernetes.default.svc -> 127.0.0.1, no other
# record (AAAA: no answer; any other name: NXDOMAIN). Stops by itself after 300 s.
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
s.settimeout(1)
print("listening", flush=True)
end = time.time() + 300
while time.time() < end:
    try:
        q, peer = s.recvfrom(512)
    except socket.timeout:
        continue
    if len(q) < 12:
        continue
    i, labels = 12, []
    while i < len(q) and q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode("ascii", "replace").lower()); i += 1 + q[i]
    qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
    question = q[12:i + 5]
    name = ".".join(labels)
    known = name == "kubernetes.default.svc"
    answer = b""
    if known and qtype == 1:
        answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 30, 4) + socket.inet_aton("127.0.0.1")
    flags = 0x8180 if known else 0x8183
    s.sendto(q[:2] + struct.pack(">HHHHH", flags, 1, 1 if answer else 0, 0, 0) + question + answer, peer)
PY
python3 "$tmp/dns.py" "$dns_ip" > "$tmp/dns.log" 2>&1 &
dns_pid=$!
kubectl config view --raw --minify --flatten > "$tmp/kubeconfig"
server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
port=${server##*:}
install_crds
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
# ready_against HOST HOW: the chrooted static binary against https://HOST:<port> is ready
ready_against() {
  local host=$1 how=$2 health metrics op ready=""
  sed "s|server: .*|server: https://$host:$port|" "$tmp/kubeconfig" > "$root/kubeconfig"
  health=$(free_port)
  metrics=$(free_port)
  chroot "$root" /membrane run --kubeconfig=/kubeconfig --health-addr="127.0.0.1:$health" \
    --metrics-addr="127.0.0.1:$metrics" --log-format=text > "$tmp/run.log" 2>&1 &
  op=$!
  for _ in $(seq 120); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$health/readyz")" = 200 ]; then ready=1; break; fi
    kill -0 "$op" 2>/dev/null || break
    sleep 0.5
  done
  kill -TERM "$op" 2>/dev/null || true
  wait "$op" 2>/dev/null || true
  if [ -n "$ready" ] && grep -q "https://$host:$port" "$tmp/run.log"; then
    ok "membrane (static, chrooted): resolves $host ($how) and is ready against https://$host:$port"
  else
    fail "membrane (static, chrooted): resolves $host ($how) and is ready against https://$host:$port" "$(tail -20 "$tmp/run.log"; cat "$tmp/dns.log")"
  fi
}
ready_against localhost "/etc/hosts"
for _ in $(seq 50); do grep -q listening "$tmp/dns.log" && break; sleep 0.1; done
if kill -0 "$dns_pid" 2>/dev/null && grep -q listening "$tmp/dns.log"; then
  ready_against kubernetes.default.svc "DNS, $dns_ip"
else
  fail "the DNS stand-in listens on $dns_ip:53" "$(cat "$tmp/dns.log")"
fi
kill "$dns_pid" 2>/dev/null || true
wait "$dns_pid" 2>/dev/null || true

# the decision-test OPA: the digest hack/image.sh gives is the one the chart and kustomize pin
opa=$(awk '$1 == "opa" {print $2}' "$tmp/digests-a")
values=$(sed -n 's/^    digest: "\(sha256:[a-f0-9]\{64\}\)".*/\1/p' charts/membrane/values.yaml | tail -1)
kustomization=$(sed -n 's/^    digest: "\(sha256:[a-f0-9]\{64\}\)".*/\1/p' manifests/opa/kustomization.yaml)
gover=$(go version "$(bash hack/opa.sh)" 2>/dev/null | awk '{print $NF}' || true)
if [ -n "$opa" ] && [ "$opa" = "$values" ]; then
  ok "opa: charts/membrane/values.yaml pins the digest hack/image.sh gives ($opa)"
else
  fail "opa: charts/membrane/values.yaml pins the digest hack/image.sh gives" \
    "hack/image.sh: ${opa:-none}; values.yaml decisionTestOPA.image.digest: ${values:-none}. The OPA binary was built with ${gover:-an unknown Go}: another Go toolchain builds another binary; if the OPA or its build changed on purpose, pin the new digest in both files"
fi
if [ -n "$opa" ] && [ "$opa" = "$kustomization" ]; then
  ok "opa: manifests/opa/kustomization.yaml pins the digest hack/image.sh gives"
else
  fail "opa: manifests/opa/kustomization.yaml pins the digest hack/image.sh gives" "hack/image.sh: ${opa:-none}; kustomization.yaml images[0].digest: ${kustomization:-none}"
fi
python3 "$tmp/config.py" "$tmp/opa.config.json" "$tmp/opa.manifest.json" > "$tmp/opa.fields" 2>&1 || true
want_field opa 'entrypoint ["/opa"]' "entrypoint /opa"
want_field opa 'user 65532:65532' "user 65532:65532"
want_field opa 'layers 1 1' "exactly one layer"
want_field opa "label org.opencontainers.image.version=1.22.4" "label org.opencontainers.image.version=1.22.4"
if tar -tzf "$tmp/opa.layer0.tar.gz" | sed 's|^\./||; /^$/d' | grep -qx opa && [ "$(tar -tzf "$tmp/opa.layer0.tar.gz" | sed 's|^\./||; /^$/d' | wc -l)" -eq 1 ]; then
  ok "opa: the layer holds /opa only"
else
  fail "opa: the layer holds /opa only" "$(tar -tzf "$tmp/opa.layer0.tar.gz" | head)"
fi
mkdir -p "$tmp/opa-root"
tar -xzf "$tmp/opa.layer0.tar.gz" -C "$tmp/opa-root"
if chroot "$tmp/opa-root" /opa version > "$tmp/out" 2>&1 && grep -q '^Version: 1.22.4$' "$tmp/out"; then
  ok "opa: the image's /opa runs alone in a chroot and is OPA 1.22.4"
else
  fail "opa: the image's /opa runs alone in a chroot and is OPA 1.22.4" "$(cat "$tmp/out")"
fi

helm=$(bash hack/helm.sh) || { fail "hack/helm.sh provides helm"; finish; }
if "$helm" template membrane charts/membrane -n membrane-system --set decisionTestOPA.enabled=true > "$tmp/helm.yaml" 2>"$tmp/out" &&
   [ -n "$opa" ] && grep -qx "          image: \"ghcr.io/kfm/membrane-opa@$opa\"" "$tmp/helm.yaml"; then
  ok "helm template --set decisionTestOPA.enabled=true: the OPA Deployment runs ghcr.io/kfm/membrane-opa@$opa"
else
  fail "helm template --set decisionTestOPA.enabled=true: the OPA Deployment runs ghcr.io/kfm/membrane-opa@${opa:-?}" "$(cat "$tmp/out"; grep -n 'image:' "$tmp/helm.yaml")"
fi
mkdir -p "$tmp/overlay"
rel=$(realpath --relative-to="$tmp/overlay" manifests)
printf 'resources: [%s]\ncomponents: [%s/opa]\n' "$rel" "$rel" > "$tmp/overlay/kustomization.yaml"
if kubectl kustomize "$tmp/overlay" > "$tmp/kustomize.yaml" 2>"$tmp/out" &&
   [ -n "$opa" ] && grep -qx "        image: ghcr.io/kfm/membrane-opa@$opa" "$tmp/kustomize.yaml"; then
  ok "kubectl kustomize with manifests/opa: the OPA Deployment runs ghcr.io/kfm/membrane-opa@$opa"
else
  fail "kubectl kustomize with manifests/opa: the OPA Deployment runs ghcr.io/kfm/membrane-opa@${opa:-?}" "$(cat "$tmp/out"; grep -n 'image:' "$tmp/kustomize.yaml")"
fi

finish
