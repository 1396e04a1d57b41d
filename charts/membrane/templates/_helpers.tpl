{{/* Names and labels shared by the templates. */}}

{{- define "membrane.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "membrane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "membrane.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "membrane.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "membrane.labels" -}}
{{ include "membrane.selectorLabels" . }}
app.kubernetes.io/part-of: kfm
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
Rules the operator needs where it writes: its own kinds, the release targets,
the probe Pods (probe.enabled), verification Secrets and Events. A
ClusterRole for all namespaces, or a Role in watchNamespace. Keep in step with
manifests/rbac.yaml (test/integration/test_install.sh compares what each grants).
*/}}
{{- define "membrane.namespacedRules" -}}
# GovernedAPIRelease: watch it; patch/update the object itself only for metadata
# (its finalizer, removing the break-glass annotations); write its status.
- apiGroups: [governance.kfm.dev]
  resources: [governedapireleases]
  verbs: [get, list, watch, patch, update]
- apiGroups: [governance.kfm.dev]
  resources: [governedapireleases/status]
  verbs: [get, patch]
# ownerReferences with blockOwnerDeletion (the probe Pod owned by its release).
- apiGroups: [governance.kfm.dev]
  resources: [governedapireleases/finalizers]
  verbs: [update]
# PolicyBundle: watch it, write its status; its ConfigMap's ownerReference has
# blockOwnerDeletion, which needs update on its finalizers.
- apiGroups: [governance.kfm.dev]
  resources: [policybundles]
  verbs: [get, list, watch]
- apiGroups: [governance.kfm.dev]
  resources: [policybundles/status]
  verbs: [patch]
- apiGroups: [governance.kfm.dev]
  resources: [policybundles/finalizers]
  verbs: [update]
# DatasetPromotion: watch it, update it only for its finalizer, write its status.
- apiGroups: [governance.kfm.dev]
  resources: [datasetpromotions]
  verbs: [get, list, watch, update]
- apiGroups: [governance.kfm.dev]
  resources: [datasetpromotions/status]
  verbs: [patch]
# The published bundle ConfigMaps: created, or updated with a resourceVersion
# precondition; never deleted (the garbage collector removes them with their bundle).
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, update]
# The release target: read, and patch the container image and release annotations.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, patch]
# create/delete: the short-lived membrane probe Pods, only with probe.enabled. RBAC
# cannot restrict create by name, so this allows creating any Pod where the rule
# applies; the admission policy for membrane's Pods admits only probe pods.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch{{ if .Values.probe.enabled }}, create, delete{{ end }}]
# Secrets named by the specs (verification token; bundle token, CA, signing key):
# get by name only, never list or watch.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

{{/*
Cluster-wide reads for the membrane checks, and the membrane-rbac reviews:
SubjectAccessReviews cluster-wide and LocalSubjectAccessReviews in every
namespace (a RoleBinding anywhere could grant the API's ServiceAccount).
*/}}
{{- define "membrane.clusterRules" -}}
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
- apiGroups: [authorization.k8s.io]
  resources: [subjectaccessreviews, localsubjectaccessreviews]
  verbs: [create]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings, clusterroles, clusterrolebindings]
  verbs: [list]
{{- end -}}

{{/*
The leader-election Lease: "membrane-leader", or for a shard (watchLabelSelector)
"membrane-leader-" and the first 8 hex digits of sha256(selector), as the binary names it.
*/}}
{{- define "membrane.leaseName" -}}
{{- if .Values.watchLabelSelector -}}
membrane-leader-{{ .Values.watchLabelSelector | sha256sum | trunc 8 }}
{{- else -}}
membrane-leader
{{- end -}}
{{- end -}}

{{/* The decision-test OPA's labels (templates/opa.yaml). */}}
{{- define "membrane.opaSelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: decision-test-opa
{{- end -}}

{{- define "membrane.opaLabels" -}}
{{ include "membrane.opaSelectorLabels" . }}
app.kubernetes.io/part-of: kfm
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}
