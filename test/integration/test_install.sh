#!/usr/bin/env bash
# Checks the two install paths against a real kube-apiserver: the kustomize
# manifests (manifests/) and the Helm chart (charts/membrane) render, pass
# `kubectl apply --dry-run=server` without Pod Security warnings in a namespace
# that enforces "restricted", and give the Deployment its hardening, probes,
# ports and flags; `helm lint` passes and values.schema.json refuses bad values;
# the chart's CRDs are byte-identical to crds/; the optional decision-test OPA
# (the chart's decisionTestOPA, off by default, pinned by digest and refused with a placeholder;
# kustomize's manifests/opa component) renders hardened and guarded; the admission
# policies confining the operator's writes are in both renderings (each bound Deny+Audit,
# matching only the operator's ServiceAccount; the chart's copies byte-identical to
# manifests/), the probe's pieces (--enable-probe, the Pod grant and Pod policy) only
# with the chart's probe.enabled or kustomize's manifests/probe; and the RBAC each install grants
# is least-privilege: `kubectl auth can-i` as the operator's ServiceAccount
# allows what the operator needs and refuses the rest. Each rendered Deployment
# matches the binary: its args (with $(VAR) expanded as the kubelet does) are
# accepted by `membrane ARGS... --help`, which checks the whole line and exits 2
# on an unknown flag or bad value, and its metrics and health ports, probes and
# the Service's target are the ports those args make the binary listen on.
# Needs KUBECONFIG (admin), kubectl, go (helm is built by hack/helm.sh) and
# MEMBRANE_BIN (default build/membrane).
source "$(dirname "$0")/lib.sh"
run() { # what command... : ok when the command succeeds
  local what=$1; shift
  if "$@" >"$tmp/out" 2>&1; then ok "$what"; else fail "$what" "$(tail -20 "$tmp/out")"; fi
}

need_cluster test_install
command -v python3 >/dev/null || { echo "FAIL test_install: python3 is not installed (hack/setup.sh installs it)"; exit 1; }
helm=$(bash hack/helm.sh) || { echo "FAIL test_install: hack/helm.sh could not provide helm"; exit 1; }
membrane=${MEMBRANE_BIN:-build/membrane}
[ -x "$membrane" ] || { echo "FAIL test_install: no membrane binary at $membrane (set MEMBRANE_BIN)"; exit 1; }

sa=system:serviceaccount:membrane-system:membrane
ns_a="membrane-install-$$-a"
ns_b="membrane-install-$$-b"
namespaces+=(membrane-system "$ns_a" "$ns_b")
cleanup() {
  kubectl delete clusterrole,clusterrolebinding -l app.kubernetes.io/name=membrane --ignore-not-found >/dev/null 2>&1 || true
  on_exit
}
trap cleanup EXIT

# json_of FILE: the objects in a rendered YAML stream as one JSON List.
json_of() {
  kubectl create --dry-run=client -o json -f "$1" | python3 -c 'import json, sys
text, dec, pos, items = sys.stdin.read(), json.JSONDecoder(), 0, []
while True:
    while pos < len(text) and text[pos].isspace(): pos += 1
    if pos >= len(text): break
    obj, pos = dec.raw_decode(text, pos)
    items.extend(obj["items"] if obj.get("kind") == "List" else [obj])
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))'
}
# only KIND... < List JSON > List JSON with only those kinds
only() {
  python3 -c 'import json, sys
l = json.load(sys.stdin)
items = l["items"] if l.get("kind") == "List" else [l]
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": [i for i in items if i["kind"] in sys.argv[1:]]}))' "$@"
}

# The Deployment's hardening, probes, ports, flags and image, as the contract asks.
cat > "$tmp/check_deployment.py" <<'PY'
import json, sys
items = json.load(open(sys.argv[1]))["items"]
want_args = sys.argv[2:]
deps = [i for i in items if i["kind"] == "Deployment"]
def check(what, cond, detail=""):
    print(("ok " if cond else "FAIL ") + what + ("" if cond else " -- " + detail))
check("one Deployment", len(deps) == 1, str(len(deps)))
if deps:
    pod = deps[0]["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    c = [x for x in pod["containers"] if x["name"] == "membrane"]
    check("container membrane", len(c) == 1)
    c = c[0] if c else {}
    sc = c.get("securityContext", {})
    check("runAsNonRoot", psc.get("runAsNonRoot") is True and sc.get("runAsNonRoot", True) is True)
    check("runAsUser 65532", psc.get("runAsUser") == 65532 and sc.get("runAsUser", 65532) == 65532)
    check("readOnlyRootFilesystem", sc.get("readOnlyRootFilesystem") is True)
    check("allowPrivilegeEscalation false", sc.get("allowPrivilegeEscalation") is False)
    check("all capabilities dropped", sc.get("capabilities", {}).get("drop") == ["ALL"] and not sc.get("capabilities", {}).get("add"))
    check("seccomp RuntimeDefault", psc.get("seccompProfile", {}).get("type") == "RuntimeDefault")
    res = c.get("resources", {})
    check("requests cpu 50m memory 48Mi", res.get("requests") == {"cpu": "50m", "memory": "48Mi"}, str(res))
    check("limits cpu 500m memory 128Mi", res.get("limits") == {"cpu": "500m", "memory": "128Mi"}, str(res))
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check("ports metrics 8080 and health 8081", ports == {"metrics": 8080, "health": 8081}, str(ports))
    lp, rp = c.get("livenessProbe", {}).get("httpGet", {}), c.get("readinessProbe", {}).get("httpGet", {})
    check("liveness /healthz on health", lp.get("path") == "/healthz" and lp.get("port") == "health", str(lp))
    check("readiness /readyz on health", rp.get("path") == "/readyz" and rp.get("port") == "health", str(rp))
    args = c.get("args", [])
    check("args start with run", args[:1] == ["run"], str(args))
    missing = [a for a in want_args if a not in args]
    check("args include " + " ".join(want_args), not missing, str(args))
    env = {e["name"]: e for e in c.get("env", [])}
    check("POD_NAMESPACE from the downward API",
          env.get("POD_NAMESPACE", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace")
    image = c.get("image", "")
    check("image pinned by digest", "@sha256:" in image and len(image.split("@sha256:")[1]) == 64, image)
    check("ServiceAccount membrane", pod.get("serviceAccountName") == "membrane", str(pod.get("serviceAccountName")))
PY
check_deployment() { # label rendered.json extra-args...
  local label=$1 file=$2 line n=0; shift 2
  while IFS= read -r line; do
    n=$((n + 1))
    case $line in
      "ok "*) ok "$label Deployment: ${line#ok }" ;;
      *) fail "$label Deployment: ${line#FAIL }" ;;
    esac
  done < <(python3 "$tmp/check_deployment.py" "$file" "$@" 2>&1)
  [ "$n" -ge 17 ] || fail "$label Deployment: every check ran" "only $n lines"
}

# The Deployment against the binary: its args expanded as the kubelet expands $(VAR)
# from the container's env (written NUL-separated to argv-out), and the ports the
# binary listens on with them (the flag's port, or its default from --help) are the
# containerPorts the probes and the Service use.
cat > "$tmp/check_runtime.py" <<'PY'
import json, re, sys
items = json.load(open(sys.argv[1]))["items"]
usage = open(sys.argv[2]).read()
argv_out = sys.argv[3]
def check(what, cond, detail=""):
    print(("ok " if cond else "FAIL ") + what + ("" if cond else " -- " + detail))
dep = [i for i in items if i["kind"] == "Deployment"][0]
pod = dep["spec"]["template"]["spec"]
c = [x for x in pod["containers"] if x["name"] == "membrane"][0]
# what the kubelet substitutes: a literal value, or a stand-in for one from the downward API
env = {e["name"]: e.get("value", "membrane-system" if "valueFrom" in e else "") for e in c.get("env", [])}
undefined = []
def expand(a):
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        if m.group(1) not in env:
            undefined.append(m.group(1))
            return m.group(0)
        return env[m.group(1)]
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, a)
args = [expand(a) for a in c.get("args", [])]
check("every $(VAR) in args names a variable of the container's env", not undefined, str(undefined))
open(argv_out, "w").write("".join(a + "\0" for a in args))
if c.get("command"):
    check("no command: the image's entrypoint is the binary", False, str(c["command"]))
def flag(name):
    for i, a in enumerate(args):
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
        if a == name and i + 1 < len(args):
            return args[i + 1]
    m = re.search(re.escape(name) + r" ADDR .*default (\S+)", usage)
    return m.group(1) if m else None
ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
for name, port_name in (("--metrics-addr", "metrics"), ("--health-addr", "health")):
    addr = flag(name)
    listens = int(addr.rsplit(":", 1)[1]) if addr and re.search(r":\d+$", addr) else None
    check(f"containerPort {port_name} is the port {name} listens on ({addr})", listens is not None and ports.get(port_name) == listens,
          f"containerPort {ports.get(port_name)}, {name} {addr}")
    check(f"{name} listens on every interface, so the kubelet and Prometheus reach it",
          bool(addr) and addr.rsplit(":", 1)[0] in ("", "0.0.0.0", "[::]"), str(addr))
for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
    g = c.get(probe, {}).get("httpGet", {})
    port = ports.get(g.get("port"), g.get("port"))
    check(f"{probe} GET {path} on the health port", g.get("path") == path and port == ports.get("health"), str(g))
for svc in [i for i in items if i["kind"] == "Service"]:
    for p in svc["spec"].get("ports", []):
        t = p.get("targetPort", p.get("port"))
        check(f"Service {svc['metadata']['name']} port {p.get('name')} targets the metrics port",
              t == "metrics" or t == ports.get("metrics"), str(t))
PY
check_runtime() { # label rendered.json
  local label=$1 file=$2 line rc=0 args=()
  "$membrane" --help > "$tmp/usage.txt"
  while IFS= read -r line; do
    case $line in
      "ok "*) ok "$label Deployment: ${line#ok }" ;;
      *) fail "$label Deployment: ${line#FAIL }" ;;
    esac
  done < <(python3 "$tmp/check_runtime.py" "$file" "$tmp/usage.txt" "$tmp/argv" 2>&1)
  mapfile -d '' args < "$tmp/argv"
  "$membrane" "${args[@]}" --help > "$tmp/out" 2>&1 || rc=$?
  if [ $rc -eq 0 ] && grep -q '^usage:' "$tmp/out"; then
    ok "$label Deployment: membrane accepts its args (${args[*]})"
  else
    fail "$label Deployment: membrane accepts its args (${args[*]})" "exit $rc: $(head -3 "$tmp/out")"
  fi
  # the same check refuses a flag the binary does not have
  rc=0
  "$membrane" "${args[@]}" --no-such-flag --help > "$tmp/out" 2>&1 || rc=$?
  if [ $rc -eq 2 ] && grep -q -- '--no-such-flag' "$tmp/out"; then
    ok "$label Deployment: with an unknown flag added, membrane exits 2 naming it"
  else
    fail "$label Deployment: with an unknown flag added, membrane exits 2 naming it" "exit $rc: $(head -3 "$tmp/out")"
  fi
}

# Least privilege, asked of the apiserver as the operator's ServiceAccount.
# resource is TYPE, TYPE/NAME, or TYPE#SUBRESOURCE (kubectl reads TYPE/X as a name).
can() { # label yes|no verb resource [namespace]
  local label=$1 want=$2 verb=$3 res=$4 ns=${5:-} got args=()
  case $res in
    *"#"*) args=("${res%%#*}" --subresource "${res#*#}") ;;
    *) args=("$res") ;;
  esac
  if [ -n "$ns" ]; then args+=(-n "$ns"); else args+=(--all-namespaces); fi
  # the RBAC authorizer sees a change a moment after it is written: ask again
  # for a few seconds before calling a wrong answer a failure
  for _ in $(seq 1 20); do
    got=$(kubectl auth can-i "$verb" "${args[@]}" --as="$sa" 2>/dev/null || true)
    [ "$got" = "$want" ] && break
    sleep 0.25
  done
  if [ "$got" = "$want" ]; then
    ok "$label RBAC: can-i $verb $res ${ns:+-n $ns} = $want"
  else
    fail "$label RBAC: can-i $verb $res ${ns:+-n $ns} = $want" "got: $got"
  fi
}
rbac_matrix() { # label ns-where-writes-are-allowed
  local l=$1 w=$2
  can "$l" yes list governedapireleases.governance.kfm.dev "$w"
  can "$l" yes watch datasetpromotions.governance.kfm.dev "$w"
  can "$l" yes update datasetpromotions.governance.kfm.dev "$w"
  can "$l" no patch datasetpromotions.governance.kfm.dev "$w"
  can "$l" no delete datasetpromotions.governance.kfm.dev "$w"
  can "$l" yes patch datasetpromotions.governance.kfm.dev#status "$w"
  can "$l" no update datasetpromotions.governance.kfm.dev#status "$w"
  can "$l" yes watch policybundles.governance.kfm.dev "$w"
  can "$l" no patch policybundles.governance.kfm.dev "$w"
  can "$l" yes patch governedapireleases.governance.kfm.dev#status "$w"
  can "$l" no update governedapireleases.governance.kfm.dev#status "$w"
  can "$l" yes update governedapireleases.governance.kfm.dev#finalizers "$w"
  can "$l" yes patch policybundles.governance.kfm.dev#status "$w"
  can "$l" no update policybundles.governance.kfm.dev#status "$w"
  can "$l" yes update policybundles.governance.kfm.dev#finalizers "$w"
  can "$l" no update deployments.apps#scale "$w"
  can "$l" no get pods#log "$w"
  can "$l" no delete governedapireleases.governance.kfm.dev "$w"
  can "$l" no create governedapireleases.governance.kfm.dev "$w"
  can "$l" yes patch deployments.apps "$w"
  can "$l" no update deployments.apps "$w"
  can "$l" no delete deployments.apps "$w"
  can "$l" no create deployments.apps "$w"
  can "$l" no list replicasets.apps "$w"
  can "$l" no patch replicasets.apps "$w"
  can "$l" no create pods "$w"
  can "$l" no delete pods "$w"
  can "$l" yes list pods "$w"
  can "$l" no create pods#exec "$w"
  can "$l" no patch pods "$w"
  can "$l" yes get secrets "$w"
  can "$l" no list secrets "$w"
  can "$l" no watch secrets "$w"
  can "$l" yes create configmaps "$w"
  can "$l" yes update configmaps "$w"
  can "$l" yes watch configmaps "$w"
  can "$l" no patch configmaps "$w"
  can "$l" no delete configmaps "$w"
  can "$l" yes create events "$w"
  can "$l" no create events.events.k8s.io "$w"
  can "$l" yes list networkpolicies.networking.k8s.io "$w"
  can "$l" no create networkpolicies.networking.k8s.io "$w"
  can "$l" yes watch namespaces
  can "$l" no create namespaces
  can "$l" yes create subjectaccessreviews.authorization.k8s.io
  can "$l" yes create localsubjectaccessreviews.authorization.k8s.io "$w"
  can "$l" yes create localsubjectaccessreviews.authorization.k8s.io kube-system
  can "$l" no get nodes
  can "$l" yes list rolebindings.rbac.authorization.k8s.io "$w"
  can "$l" yes list clusterrolebindings.rbac.authorization.k8s.io
  can "$l" no create clusterroles.rbac.authorization.k8s.io
  can "$l" no create rolebindings.rbac.authorization.k8s.io "$w"
  can "$l" no create serviceaccounts#token "$w"
  can "$l" yes create leases.coordination.k8s.io membrane-system
  can "$l" yes update leases.coordination.k8s.io/membrane-leader membrane-system
  can "$l" no update leases.coordination.k8s.io/someone-else membrane-system
  can "$l" no create leases.coordination.k8s.io kube-system
}
# The admission policies of a rendered install (ValidatingAdmissionPolicy and Binding):
# exactly the named ones, each matching only the operator's ServiceAccount USER
# (matchConditions), failurePolicy Fail, bound with validationActions [Deny, Audit].
cat > "$tmp/check_policies.py" <<'PY'
import json, sys
items = json.load(open(sys.argv[1]))["items"]
user, want = sys.argv[2], sorted(sys.argv[3:])
def check(what, cond, detail=""):
    print(("ok " if cond else "FAIL ") + what + ("" if cond else " -- " + detail))
pols = {i["metadata"]["name"]: i for i in items if i["kind"] == "ValidatingAdmissionPolicy"}
binds = {i["spec"].get("policyName"): i for i in items if i["kind"] == "ValidatingAdmissionPolicyBinding"}
check("policies " + " ".join(want), sorted(pols) == want, str(sorted(pols)))
check("  one binding each", sorted(binds) == want, str(sorted(binds)))
for name in want:
    p, b = pols.get(name, {}).get("spec", {}), binds.get(name, {}).get("spec", {})
    check(f"  {name}: failurePolicy Fail", p.get("failurePolicy") == "Fail", str(p.get("failurePolicy")))
    mc = [c.get("expression") for c in p.get("matchConditions", [])]
    check(f"  {name}: matches only {user}", mc == [f"request.userInfo.username == '{user}'"], str(mc))
    check(f"  {name}: bound with validationActions [Deny, Audit]", b.get("validationActions") == ["Deny", "Audit"],
          str(b.get("validationActions")))
    check(f"  {name}: audit annotation membrane-write", [a.get("key") for a in p.get("auditAnnotations", [])] == ["membrane-write"])
PY
check_policies() { # label rendered.json user names...
  local label=$1 file=$2 user=$3 line; shift 3
  while IFS= read -r line; do
    case $line in
      "ok "*) ok "$label admission: ${line#ok }" ;;
      *) fail "$label admission: ${line#FAIL }" ;;
    esac
  done < <(python3 "$tmp/check_policies.py" "$file" "$user" "$@" 2>&1)
}
# probe_pieces LABEL rendered.yaml yes|no: the probe's flag and Pod grant are there or not
probe_pieces() {
  local label=$1 f=$2 want=$3 got=no
  if grep -q -- '- --enable-probe$' "$f" && grep -qE 'verbs: \[(get, list, watch, )?create, delete\]' "$f"; then got=yes
  elif grep -qE -- '^\s*- --enable-probe' "$f" || grep -qE 'verbs: \[(get, list, watch, )?create, delete\]' "$f"; then got=partly; fi
  if [ "$got" = "$want" ]; then ok "$label: the probe's --enable-probe and Pod create/delete grant: $want"
  else fail "$label: the probe's --enable-probe and Pod create/delete grant: $want" "got: $got"; fi
}

apply_rbac() { # rendered.json
  only ServiceAccount ClusterRole ClusterRoleBinding Role RoleBinding < "$1" > "$tmp/rbac.json"
  kubectl apply -f "$tmp/rbac.json"
}
delete_rbac() { # rendered.json
  kubectl delete -f "$tmp/rbac.json" --ignore-not-found --wait=true
}

# the probe's grant an e2e scenario applied (e2e/lib.sh, without labels): the RBAC
# checks below judge only what each rendering grants
kubectl delete clusterrolebinding,clusterrole membrane-probe --ignore-not-found >/dev/null 2>&1 || true

echo "== CRDs and namespaces"
run "kubectl apply --server-side -f crds/" kubectl apply --server-side --force-conflicts -f crds/
run "the CRDs are Established" kubectl wait --for=condition=Established \
  crd/governedapireleases.governance.kfm.dev crd/policybundles.governance.kfm.dev crd/datasetpromotions.governance.kfm.dev --timeout=60s
# a real namespace with the install's Pod Security labels, so dry runs see "restricted";
# an earlier run's may still be terminating
kubectl wait --for=delete namespace/membrane-system --timeout=120s >/dev/null 2>&1 || true
run "namespace membrane-system (restricted Pod Security)" kubectl apply -f manifests/namespace.yaml
run "test namespaces" kubectl create namespace "$ns_a"
kubectl create namespace "$ns_b" >/dev/null

echo "== kustomize: manifests/"
if kubectl kustomize manifests/ > "$tmp/kustomize.yaml" 2>"$tmp/out"; then ok "kubectl kustomize manifests/ renders"; else fail "kubectl kustomize manifests/ renders" "$(cat "$tmp/out")"; fi
kinds=$(grep '^kind:' "$tmp/kustomize.yaml" | sort | uniq -c | awk '{print $3"="$1}' | tr '\n' ' ')
want="ClusterRole=1 ClusterRoleBinding=1 CustomResourceDefinition=3 Deployment=1 Namespace=1 Role=1 RoleBinding=1 Service=1 ServiceAccount=1 ValidatingAdmissionPolicy=2 ValidatingAdmissionPolicyBinding=2 "
if [ "$kinds" = "$want" ]; then ok "kustomize renders $want"; else fail "kustomize renders $want" "got: $kinds"; fi
if grep -q '^kind: GovernedAPIRelease\|^  name: argocd-cm' "$tmp/kustomize.yaml"; then
  fail "samples and argocd are not part of the kustomization"
else
  ok "samples and argocd are not part of the kustomization"
fi
if kubectl apply --dry-run=server -f "$tmp/kustomize.yaml" >"$tmp/out" 2>&1; then
  ok "kustomize output passes kubectl apply --dry-run=server"
else
  fail "kustomize output passes kubectl apply --dry-run=server" "$(cat "$tmp/out")"
fi
if grep -qi 'PodSecurity' "$tmp/out"; then fail "kustomize Deployment meets Pod Security restricted" "$(grep -i PodSecurity "$tmp/out")"; else ok "kustomize Deployment meets Pod Security restricted"; fi
json_of "$tmp/kustomize.yaml" > "$tmp/kustomize.json"
check_deployment kustomize "$tmp/kustomize.json" --leader-elect '--leader-election-namespace=$(POD_NAMESPACE)' --log-format=json
check_runtime kustomize "$tmp/kustomize.json"
check_policies kustomize "$tmp/kustomize.json" "$sa" membrane-configmap-writes membrane-deployment-writes
probe_pieces kustomize "$tmp/kustomize.yaml" no
for f in admission-deployments.yaml admission-configmaps.yaml probe/admission-pods.yaml; do
  if cmp -s "manifests/$f" "charts/membrane/files/$(basename "$f")"; then ok "byte-identical: manifests/$f and the chart's copy"
  else fail "byte-identical: manifests/$f and the chart's copy" "cp manifests/$f charts/membrane/files/"; fi
done
ns_set=$(python3 -c 'import json,sys; print(sorted({i["metadata"].get("namespace","") for i in json.load(open(sys.argv[1]))["items"] if i["kind"] not in ("Namespace","CustomResourceDefinition","ClusterRole","ClusterRoleBinding","ValidatingAdmissionPolicy","ValidatingAdmissionPolicyBinding")}))' "$tmp/kustomize.json")
if [ "$ns_set" = "['membrane-system']" ]; then ok "kustomize puts every namespaced object in membrane-system"; else fail "kustomize puts every namespaced object in membrane-system" "$ns_set"; fi
if apply_rbac "$tmp/kustomize.json" >"$tmp/out" 2>&1; then
  ok "kustomize RBAC applied"
  rbac_matrix kustomize "$ns_a"
  delete_rbac >/dev/null 2>&1 || true
else
  fail "kustomize RBAC applied" "$(cat "$tmp/out")"
fi

echo "== kustomize: manifests/ with the probe component (manifests/probe)"
mkdir -p "$tmp/probe-overlay"
rel=$(realpath --relative-to="$tmp/probe-overlay" manifests)
printf 'resources: [%s]\ncomponents: [%s/probe]\n' "$rel" "$rel" > "$tmp/probe-overlay/kustomization.yaml"
if kubectl kustomize "$tmp/probe-overlay" > "$tmp/kustomize-probe.yaml" 2>"$tmp/out"; then ok "kustomize overlay with manifests/probe renders"; else fail "kustomize overlay with manifests/probe renders" "$(cat "$tmp/out")"; fi
run "kustomize with manifests/probe passes kubectl apply --dry-run=server" kubectl apply --dry-run=server -f "$tmp/kustomize-probe.yaml"
json_of "$tmp/kustomize-probe.yaml" > "$tmp/kustomize-probe.json"
check_policies "kustomize probe" "$tmp/kustomize-probe.json" "$sa" membrane-configmap-writes membrane-deployment-writes membrane-pod-writes
if grep -q -- '- --enable-probe$' "$tmp/kustomize-probe.yaml" && grep -q '^  name: membrane-probe$' "$tmp/kustomize-probe.yaml"; then
  ok "kustomize probe: the Deployment passes --enable-probe, and the ClusterRole membrane-probe is there"
else
  fail "kustomize probe: the Deployment passes --enable-probe, and the ClusterRole membrane-probe is there"
fi
check_runtime "kustomize probe" "$tmp/kustomize-probe.json"
if apply_rbac "$tmp/kustomize-probe.json" >"$tmp/out" 2>&1; then
  ok "kustomize probe RBAC applied"
  can "kustomize probe" yes create pods "$ns_a"
  can "kustomize probe" yes delete pods "$ns_a"
  can "kustomize probe" no patch pods "$ns_a"
  can "kustomize probe" no create pods#exec "$ns_a"
  delete_rbac >/dev/null 2>&1 || true
else
  fail "kustomize probe RBAC applied" "$(cat "$tmp/out")"
fi

echo "== helm: charts/membrane"
run "helm lint --strict charts/membrane" "$helm" lint --strict charts/membrane
if "$helm" template charts/membrane > "$tmp/helm-default.yaml" 2>"$tmp/out"; then ok "helm template charts/membrane renders"; else fail "helm template charts/membrane renders" "$(cat "$tmp/out")"; fi
run "helm template charts/membrane passes kubectl apply --dry-run=server" kubectl apply --dry-run=server -f "$tmp/helm-default.yaml"
if "$helm" template membrane charts/membrane -n membrane-system > "$tmp/helm.yaml" 2>"$tmp/out"; then ok "helm template -n membrane-system renders"; else fail "helm template -n membrane-system renders" "$(cat "$tmp/out")"; fi
if kubectl apply --dry-run=server -f "$tmp/helm.yaml" >"$tmp/out" 2>&1; then
  ok "helm output (membrane-system) passes kubectl apply --dry-run=server"
else
  fail "helm output (membrane-system) passes kubectl apply --dry-run=server" "$(cat "$tmp/out")"
fi
if grep -qi 'PodSecurity' "$tmp/out"; then fail "helm Deployment meets Pod Security restricted" "$(grep -i PodSecurity "$tmp/out")"; else ok "helm Deployment meets Pod Security restricted"; fi
json_of "$tmp/helm.yaml" > "$tmp/helm.json"
check_deployment helm "$tmp/helm.json" --leader-elect '--leader-election-namespace=$(POD_NAMESPACE)' --log-format=json --log-level=info
check_runtime helm "$tmp/helm.json"
check_policies helm "$tmp/helm.json" "$sa" membrane-configmap-writes membrane-deployment-writes
probe_pieces helm "$tmp/helm.yaml" no
if apply_rbac "$tmp/helm.json" >"$tmp/out" 2>&1; then
  ok "helm RBAC (all namespaces) applied"
  rbac_matrix helm "$ns_a"
  delete_rbac >/dev/null 2>&1 || true
else
  fail "helm RBAC (all namespaces) applied" "$(cat "$tmp/out")"
fi

echo "== helm: the probe (probe.enabled) and the admission policies (admissionPolicies)"
"$helm" template gov charts/membrane -n membrane-system --set probe.enabled=true > "$tmp/helm-probe.yaml"
run "helm probe.enabled output passes kubectl apply --dry-run=server" kubectl apply --dry-run=server -f "$tmp/helm-probe.yaml"
json_of "$tmp/helm-probe.yaml" > "$tmp/helm-probe.json"
check_policies "helm probe.enabled (release gov)" "$tmp/helm-probe.json" system:serviceaccount:membrane-system:gov-membrane \
  gov-membrane-configmap-writes gov-membrane-deployment-writes gov-membrane-pod-writes
probe_pieces "helm probe.enabled" "$tmp/helm-probe.yaml" yes
check_runtime "helm probe.enabled" "$tmp/helm-probe.json"
"$helm" template gov charts/membrane -n ops --set serviceAccount.name=op > "$tmp/helm-ops.yaml"
json_of "$tmp/helm-ops.yaml" > "$tmp/helm-ops.json"
check_policies "helm -n ops, serviceAccount.name op" "$tmp/helm-ops.json" system:serviceaccount:ops:op \
  gov-membrane-configmap-writes gov-membrane-deployment-writes
for off in deployments configMaps pods; do
  "$helm" template membrane charts/membrane -n membrane-system --set probe.enabled=true --set "admissionPolicies.$off=false" > "$tmp/out.yaml"
  json_of "$tmp/out.yaml" > "$tmp/out.json"
  left=()
  [ $off = deployments ] || left+=(membrane-deployment-writes)
  [ $off = configMaps ] || left+=(membrane-configmap-writes)
  [ $off = pods ] || left+=(membrane-pod-writes)
  check_policies "helm admissionPolicies.$off=false" "$tmp/out.json" "$sa" "${left[@]}"
done
"$helm" template membrane charts/membrane -n membrane-system --set watchNamespace="$ns_a" --set probe.enabled=true > "$tmp/helm-ns-probe.yaml"
json_of "$tmp/helm-ns-probe.yaml" > "$tmp/helm-ns-probe.json"
if apply_rbac "$tmp/helm-ns-probe.json" >"$tmp/out" 2>&1; then
  ok "helm RBAC (watchNamespace, probe.enabled) applied"
  can "helm watchNamespace probe" yes create pods "$ns_a"
  can "helm watchNamespace probe" yes delete pods "$ns_a"
  can "helm watchNamespace probe" no create pods "$ns_b"
  delete_rbac >/dev/null 2>&1 || true
else
  fail "helm RBAC (watchNamespace, probe.enabled) applied" "$(cat "$tmp/out")"
fi

echo "== helm: a shard (watchLabelSelector)"
"$helm" template membrane charts/membrane -n membrane-system --set watchLabelSelector='shard=a' > "$tmp/helm-shard.yaml"
run "helm watchLabelSelector output passes kubectl apply --dry-run=server" kubectl apply --dry-run=server -f "$tmp/helm-shard.yaml"
json_of "$tmp/helm-shard.yaml" > "$tmp/helm-shard.json"
check_runtime "helm watchLabelSelector" "$tmp/helm-shard.json"
lease="membrane-leader-$(printf '%s' 'shard=a' | sha256sum | cut -c1-8)"
if grep -q -- '--watch-label-selector=shard=a' "$tmp/helm-shard.yaml"; then ok "helm watchLabelSelector: the Deployment passes --watch-label-selector=shard=a"; else fail "helm watchLabelSelector: the Deployment passes --watch-label-selector=shard=a"; fi
if apply_rbac "$tmp/helm-shard.json" >"$tmp/out" 2>&1; then
  ok "helm RBAC (watchLabelSelector) applied"
  can "helm watchLabelSelector" yes update "leases.coordination.k8s.io/$lease" membrane-system
  can "helm watchLabelSelector" no update leases.coordination.k8s.io/membrane-leader membrane-system
  delete_rbac >/dev/null 2>&1 || true
else
  fail "helm RBAC (watchLabelSelector) applied" "$(cat "$tmp/out")"
fi

echo "== helm: one watched namespace"
"$helm" template membrane charts/membrane -n membrane-system --set watchNamespace="$ns_a" \
  --set leaderElection.enabled=false --set replicas=1 --set logFormat=text --set logLevel=debug > "$tmp/helm-ns.yaml"
run "helm watchNamespace output passes kubectl apply --dry-run=server" kubectl apply --dry-run=server -f "$tmp/helm-ns.yaml"
json_of "$tmp/helm-ns.yaml" > "$tmp/helm-ns.json"
check_deployment "helm watchNamespace" "$tmp/helm-ns.json" "--namespace=$ns_a" --log-format=text --log-level=debug
check_runtime "helm watchNamespace" "$tmp/helm-ns.json"
if grep -q -- '--leader-elect' "$tmp/helm-ns.yaml" || grep -q 'leader-election' "$tmp/helm-ns.yaml"; then
  fail "leader election off: no --leader-elect flag and no Lease Role"
else
  ok "leader election off: no --leader-elect flag and no Lease Role"
fi
if apply_rbac "$tmp/helm-ns.json" >"$tmp/out" 2>&1; then
  ok "helm RBAC (watchNamespace) applied"
  can "helm watchNamespace" yes patch deployments.apps "$ns_a"
  can "helm watchNamespace" no patch deployments.apps "$ns_b"
  can "helm watchNamespace" yes get secrets "$ns_a"
  can "helm watchNamespace" no get secrets "$ns_b"
  can "helm watchNamespace" no create pods "$ns_a"
  can "helm watchNamespace" no create pods "$ns_b"
  can "helm watchNamespace" yes list pods "$ns_b"
  can "helm watchNamespace" yes list networkpolicies.networking.k8s.io "$ns_b"
  can "helm watchNamespace" yes create localsubjectaccessreviews.authorization.k8s.io "$ns_b"
  can "helm watchNamespace" yes create configmaps "$ns_a"
  can "helm watchNamespace" no create configmaps "$ns_b"
  can "helm watchNamespace" yes watch governedapireleases.governance.kfm.dev "$ns_a"
  can "helm watchNamespace" no watch governedapireleases.governance.kfm.dev "$ns_b"
  can "helm watchNamespace" no create leases.coordination.k8s.io membrane-system
  delete_rbac >/dev/null 2>&1 || true
else
  fail "helm RBAC (watchNamespace) applied" "$(cat "$tmp/out")"
fi

echo "== helm: optional ServiceMonitor, values schema"
if "$helm" template membrane charts/membrane | grep -q '^kind: ServiceMonitor'; then
  fail "no ServiceMonitor by default"
else
  ok "no ServiceMonitor by default"
fi
sm=$("$helm" template membrane charts/membrane --set serviceMonitor.enabled=true 2>&1) || true
if echo "$sm" | grep -q '^apiVersion: monitoring.coreos.com/v1$' && echo "$sm" | grep -q '^kind: ServiceMonitor$' &&
   echo "$sm" | grep -q '^    - port: metrics$'; then
  ok "serviceMonitor.enabled=true renders a monitoring.coreos.com/v1 ServiceMonitor on port metrics"
else
  fail "serviceMonitor.enabled=true renders a monitoring.coreos.com/v1 ServiceMonitor on port metrics" "$sm"
fi
rejects() { # expect set...
  local want=$1; shift
  local args=() s
  for s in "$@"; do args+=(--set "$s"); done
  if "$helm" template membrane charts/membrane "${args[@]}" >"$tmp/out" 2>&1; then
    fail "values.schema.json rejects $*" "helm rendered it"
  elif grep -qF -- "$want" "$tmp/out"; then
    ok "values.schema.json rejects $* ($want)"
  else
    fail "values.schema.json rejects $*" "expected: $want; got: $(cat "$tmp/out")"
  fi
}
rejects "/image/digest" image.digest=latest
rejects "/image/repository" image.repository=ghcr.io/kfm/membrane:v1
rejects "/replicas" replicas=0
rejects "/replicas" leaderElection.enabled=false
rejects "/logFormat" logFormat=xml
rejects "/logLevel" logLevel=trace
rejects "/watchNamespace" watchNamespace=Not_A_Namespace
rejects "additional properties" replica=2
rejects "/probe/enabled" probe.enabled=yes
rejects "/admissionPolicies" admissionPolicies.secrets=true
rejects "/admissionPolicies/pods" admissionPolicies.pods=no

echo "== the decision-test OPA (optional): the chart's decisionTestOPA, kustomize's manifests/opa component"
# The OPA objects of a rendered install: a hardened Deployment running `opa run --server
# --addr=:8181` with no bundles, pinned by digest, the Service on 8181 and the NetworkPolicy
# that admits only membrane's pods. Prints one ok/FAIL line per check.
cat > "$tmp/check_opa.py" <<'PY'
import json, sys
items = json.load(open(sys.argv[1]))["items"]
name, digest = sys.argv[2], sys.argv[3]
def check(what, cond, detail=""):
    print(("ok " if cond else "FAIL ") + what + ("" if cond else " -- " + detail))
def one(kind):
    found = [i for i in items if i["kind"] == kind and i["metadata"]["name"] == name]
    check(f"one {kind} {name}", len(found) == 1, str(len(found)))
    return found[0] if found else {}
dep, svc, np = one("Deployment"), one("Service"), one("NetworkPolicy")
pod = dep.get("spec", {}).get("template", {}).get("spec", {})
cs = pod.get("containers", [{}])
c = cs[0]
sc, psc = c.get("securityContext", {}), pod.get("securityContext", {})
check("one container opa", [x.get("name") for x in cs] == ["opa"], str([x.get("name") for x in cs]))
check("image ghcr.io/kfm/membrane-opa pinned by digest", c.get("image") == "ghcr.io/kfm/membrane-opa@" + digest, str(c.get("image")))
args = c.get("args", [])
check("opa run --server --addr=:8181, no bundles", args[:3] == ["run", "--server", "--addr=:8181"] and
      not any(a.startswith(("--bundle", "-b", "--config", "-c", "--set")) for a in args[3:]), str(args))
check("restricted: non-root, read-only root, no escalation, no capabilities, RuntimeDefault",
      psc.get("runAsNonRoot") is True and sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
      and sc.get("capabilities", {}).get("drop") == ["ALL"] and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", str(sc))
check("no ServiceAccount token", pod.get("automountServiceAccountToken") is False)
ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
check("containerPort http 8181", ports == {"http": 8181}, str(ports))
for probe in ("livenessProbe", "readinessProbe"):
    g = c.get(probe, {}).get("httpGet", {})
    check(f"{probe} GET /health on http", g.get("path") == "/health" and g.get("port") == "http", str(g))
sel = dep.get("spec", {}).get("selector", {}).get("matchLabels", {})
labels = dep.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
matches = lambda selector, lbls: bool(selector) and all(lbls.get(k) == v for k, v in selector.items())
check("the Deployment selects its pods", matches(sel, labels), f"{sel} {labels}")
ctrl = [i for i in items if i["kind"] == "Deployment" and i["metadata"]["name"] != name]
ctrl_sel = ctrl[0]["spec"]["selector"]["matchLabels"] if ctrl else {}
ctrl_labels = ctrl[0]["spec"]["template"]["metadata"]["labels"] if ctrl else {}
check("the operator's Deployment does not select the OPA's pods", bool(ctrl) and not matches(ctrl_sel, labels), str(ctrl_sel))
sp = svc.get("spec", {}).get("ports", [{}])
check("the Service selects the OPA's pods on 8181", svc.get("spec", {}).get("selector") == sel and
      [(p.get("port"), p.get("targetPort")) for p in sp] == [(8181, "http")], str(svc.get("spec")))
nps = np.get("spec", {})
ing = nps.get("ingress", [])
frm = ing[0].get("from", [{}])[0].get("podSelector", {}).get("matchLabels", {}) if ing else {}
check("the NetworkPolicy guards the OPA's pods", nps.get("podSelector", {}).get("matchLabels") == sel and nps.get("policyTypes") == ["Ingress"], str(nps))
check("  and admits only the operator's pods, on 8181", len(ing) == 1 and matches(frm, ctrl_labels) and not matches(frm, labels) and
      [p.get("port") for p in ing[0].get("ports", [])] == [8181], str(ing))
PY
check_opa() { # label rendered.json name digest
  local label=$1 line n=0
  while IFS= read -r line; do
    n=$((n + 1))
    case $line in
      "ok "*) ok "$label OPA: ${line#ok }" ;;
      *) fail "$label OPA: ${line#FAIL }" ;;
    esac
  done < <(python3 "$tmp/check_opa.py" "$2" "$3" "$4" 2>&1)
  [ "$n" -ge 16 ] || fail "$label OPA: every check ran" "only $n lines"
}
opa_digest="sha256:$(printf 'a test digest for the decision-test OPA' | sha256sum | cut -c1-64)"
if grep -qE 'decision-test-opa|opa-test' "$tmp/helm.yaml"; then fail "helm: no decision-test OPA by default" "$(grep -nE 'decision-test-opa|opa-test' "$tmp/helm.yaml" | head -3)"; else ok "helm: no decision-test OPA by default"; fi
# the digest values.yaml pins (hack/image.sh opa; test_image.sh checks the two agree)
pinned_opa=$(sed -n 's/^    digest: "\(sha256:[a-f0-9]\{64\}\)".*/\1/p' charts/membrane/values.yaml | tail -1)
if "$helm" template membrane charts/membrane -n membrane-system --set decisionTestOPA.enabled=true >"$tmp/out" 2>&1 &&
   [ -n "$pinned_opa" ] && grep -q "image: \"ghcr.io/kfm/membrane-opa@$pinned_opa\"" "$tmp/out"; then
  ok "helm: decisionTestOPA.enabled=true renders the OPA pinned by the digest values.yaml gives ($pinned_opa)"
else
  fail "helm: decisionTestOPA.enabled=true renders the OPA pinned by the digest values.yaml gives (${pinned_opa:-none found})" "$(grep -n 'image:' "$tmp/out" | head -5)"
fi
if "$helm" template membrane charts/membrane -n membrane-system --set decisionTestOPA.enabled=true \
     --set decisionTestOPA.image.digest=UNSET-x >"$tmp/out" 2>&1; then
  fail "helm: decisionTestOPA with the UNSET- placeholder digest is refused" "helm rendered it"
elif grep -q 'decisionTestOPA.image.digest is "UNSET-x"' "$tmp/out" && grep -q 'ghcr.io/kfm/membrane-opa:1.22.4' "$tmp/out"; then
  ok "helm: decisionTestOPA with the UNSET- placeholder digest is refused, naming the value and the image"
else
  fail "helm: decisionTestOPA with the UNSET- placeholder digest is refused, naming the value and the image" "$(cat "$tmp/out")"
fi
rejects "/decisionTestOPA/image/digest" decisionTestOPA.image.digest=1.22.4-static
rejects "additional properties" decisionTestOPA.bundles=x
"$helm" template membrane charts/membrane -n membrane-system --set decisionTestOPA.enabled=true \
  --set decisionTestOPA.image.digest="$opa_digest" > "$tmp/helm-opa.yaml"
if kubectl apply --dry-run=server -f "$tmp/helm-opa.yaml" >"$tmp/out" 2>&1; then
  ok "helm decisionTestOPA output passes kubectl apply --dry-run=server"
else
  fail "helm decisionTestOPA output passes kubectl apply --dry-run=server" "$(cat "$tmp/out")"
fi
if grep -qi 'PodSecurity' "$tmp/out"; then fail "helm OPA Deployment meets Pod Security restricted" "$(grep -i PodSecurity "$tmp/out")"; else ok "helm OPA Deployment meets Pod Security restricted"; fi
json_of "$tmp/helm-opa.yaml" > "$tmp/helm-opa.json"
check_opa helm "$tmp/helm-opa.json" membrane-opa-test "$opa_digest"
"$helm" template membrane charts/membrane -n membrane-system --set decisionTestOPA.enabled=true \
  --set decisionTestOPA.image.digest="$opa_digest" --set decisionTestOPA.networkPolicy.enabled=false > "$tmp/out" 2>&1
if grep -q '^kind: Service$' "$tmp/out" && ! grep -q '^kind: NetworkPolicy' "$tmp/out"; then
  ok "helm: decisionTestOPA.networkPolicy.enabled=false renders no NetworkPolicy"
else
  fail "helm: decisionTestOPA.networkPolicy.enabled=false renders no NetworkPolicy" "$(grep '^kind:' "$tmp/out")"
fi

# kustomize: an overlay of manifests/ with the component; the component pins the image,
# an overlay's own images: entry pins another
mkdir -p "$tmp/opa-overlay"
rel=$(realpath --relative-to="$tmp/opa-overlay" manifests)
printf 'resources: [%s]\ncomponents: [%s/opa]\n' "$rel" "$rel" > "$tmp/opa-overlay/kustomization.yaml"
if kubectl kustomize "$tmp/opa-overlay" > "$tmp/kustomize-opa-pinned.yaml" 2>"$tmp/out" &&
   [ -n "$pinned_opa" ] && grep -q "image: ghcr.io/kfm/membrane-opa@$pinned_opa" "$tmp/kustomize-opa-pinned.yaml"; then
  ok "kustomize manifests/opa: the component pins the image by the digest values.yaml gives"
else
  fail "kustomize manifests/opa: the component pins the image by the digest values.yaml gives" "$(cat "$tmp/out"; grep -n 'image:' "$tmp/kustomize-opa-pinned.yaml" | tail -2)"
fi
printf 'images:\n  - {name: ghcr.io/kfm/membrane-opa, digest: "%s"}\n' "$opa_digest" >> "$tmp/opa-overlay/kustomization.yaml"
if kubectl kustomize "$tmp/opa-overlay" > "$tmp/kustomize-opa.yaml" 2>"$tmp/out"; then ok "kustomize overlay with manifests/opa renders"; else fail "kustomize overlay with manifests/opa renders" "$(cat "$tmp/out")"; fi
kinds=$(grep '^kind:' "$tmp/kustomize-opa.yaml" | sort | uniq -c | awk '{print $3"="$1}' | tr '\n' ' ')
want="ClusterRole=1 ClusterRoleBinding=1 CustomResourceDefinition=3 Deployment=2 Namespace=1 NetworkPolicy=1 Role=1 RoleBinding=1 Service=2 ServiceAccount=1 ValidatingAdmissionPolicy=2 ValidatingAdmissionPolicyBinding=2 "
if [ "$kinds" = "$want" ]; then ok "kustomize with manifests/opa renders $want"; else fail "kustomize with manifests/opa renders $want" "got: $kinds"; fi
if kubectl apply --dry-run=server -f "$tmp/kustomize-opa.yaml" >"$tmp/out" 2>&1; then
  ok "kustomize with manifests/opa passes kubectl apply --dry-run=server"
else
  fail "kustomize with manifests/opa passes kubectl apply --dry-run=server" "$(cat "$tmp/out")"
fi
if grep -qi 'PodSecurity' "$tmp/out"; then fail "kustomize OPA Deployment meets Pod Security restricted" "$(grep -i PodSecurity "$tmp/out")"; else ok "kustomize OPA Deployment meets Pod Security restricted"; fi
json_of "$tmp/kustomize-opa.yaml" > "$tmp/kustomize-opa.json"
check_opa kustomize "$tmp/kustomize-opa.json" opa-test "$opa_digest"

echo "== the chart's CRDs are crds/"
src=$(cd crds && ls governance.kfm.dev_*.yaml | sort | tr '\n' ' ')
dst=$(cd charts/membrane/crds && ls | sort | tr '\n' ' ')
if [ "$src" = "$dst" ]; then ok "charts/membrane/crds holds the same files as crds/ ($src)"; else fail "charts/membrane/crds holds the same files as crds/" "crds/: $src chart: $dst"; fi
for f in crds/governance.kfm.dev_*.yaml; do
  if cmp -s "$f" "charts/membrane/crds/$(basename "$f")"; then ok "byte-identical: $f"; else fail "byte-identical: $f" "run hack/generate.sh"; fi
done

finish
