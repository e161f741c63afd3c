{{/*
Helpers, all prefixed with the chart name so they never collide with a
parent chart's.
*/}}

{{- define "codeframe-guard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource name prefix: <release>-<chart>, or the release name when it already contains the chart name. */}}
{{- define "codeframe-guard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "codeframe-guard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. scripts/render-manifests.sh strips the two Helm-only ones. */}}
{{- define "codeframe-guard.labels" -}}
helm.sh/chart: {{ include "codeframe-guard.chart" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/name: {{ include "codeframe-guard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: codeframe-guard
{{- end }}

{{/* Selector labels of one component: stable across upgrades (selectors are immutable). */}}
{{- define "codeframe-guard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "codeframe-guard.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Full labels of one component. Call with (dict "ctx" $ "component" "webhook"). */}}
{{- define "codeframe-guard.componentLabels" -}}
{{ include "codeframe-guard.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "codeframe-guard.webhookName" -}}
{{- include "codeframe-guard.fullname" . }}
{{- end }}

{{- define "codeframe-guard.agentName" -}}
{{- printf "%s-agent" (include "codeframe-guard.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The ValidatingWebhookConfiguration's name; the self-managed server patches only this one. */}}
{{- define "codeframe-guard.vwcName" -}}
{{- include "codeframe-guard.fullname" . }}
{{- end }}

{{- define "codeframe-guard.tlsSecretName" -}}
{{- if .Values.tls.secretName }}
{{- .Values.tls.secretName }}
{{- else }}
{{- printf "%s-tls" (include "codeframe-guard.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "codeframe-guard.webhookImage" -}}
{{- printf "%s:%s" .Values.webhook.image.repository (default .Chart.AppVersion .Values.webhook.image.tag) }}
{{- end }}

{{- define "codeframe-guard.agentImage" -}}
{{- printf "%s:%s" .Values.agent.image.repository (default .Chart.AppVersion .Values.agent.image.tag) }}
{{- end }}

{{/* Seccomp Localhost profile the agent installs, relative to <kubeletDir>/seccomp. */}}
{{- define "codeframe-guard.workerProfile" -}}
codeframe/worker.json
{{- end }}

{{- define "codeframe-guard.agentRunDir" -}}
/run/codeframe-guard
{{- end }}

{{/*
The webhook's config file, in exactly the schema of docs/config-schema.yaml.
Namespace selection happens in the webhook configuration, so workers.namespaces
stays empty here.
*/}}
{{- define "codeframe-guard.webhookConfig" -}}
{{- $p := .Values.webhook.policy -}}
profile: worker
mode: {{ .Values.webhook.mode }}
checks:
  readOnlyRootFilesystem: {{ $p.checks.readOnlyRootFilesystem }}
  resourceLimits: {{ $p.checks.resourceLimits }}
  networkPolicy: {{ $p.checks.networkPolicy }}
  secrets: {{ $p.checks.secrets }}
  serviceAccountToken: {{ $p.checks.serviceAccountToken }}
  seccompLocalhost: {{ or .Values.agent.enabled $p.checks.seccompLocalhost }}
seccompLocalhostProfile: {{ include "codeframe-guard.workerProfile" . }}
resources:
  requireLimits: {{ toJson $p.resources.requireLimits }}
  max: {{ toJson $p.resources.max }}
allowedCapabilities: {{ toJson $p.allowedCapabilities }}
optional:
  allowedRuntimeClasses: {{ toJson $p.optional.allowedRuntimeClasses }}
  requireHostUsersFalse: {{ $p.optional.requireHostUsersFalse }}
  requireEmptyDirSizeLimit: {{ $p.optional.requireEmptyDirSizeLimit }}
networkPolicyNotSynced: {{ $p.networkPolicyNotSynced }}
workers:
  namespaces: []
  selector: {{ toJson .Values.workers.podSelector }}
exemptions:
  namespaces: {{ toJson $p.exemptions.namespaces }}
  usernames: {{ toJson $p.exemptions.usernames }}
server:
  listen: 0.0.0.0:8443
  probeListen: 0.0.0.0:8080
  threads: {{ .Values.webhook.threads }}
  connectionLimit: {{ .Values.webhook.connectionLimit }}
  connectionTimeoutSeconds: {{ .Values.webhook.connectionTimeoutSeconds }}
{{- if eq .Values.tls.mode "self-managed" }}
  tlsCert: ""
  tlsKey: ""
  tlsSecret: {{ printf "%s/%s" .Release.Namespace (include "codeframe-guard.tlsSecretName" .) }}
  webhookConfiguration: {{ include "codeframe-guard.vwcName" . }}
  service: {{ include "codeframe-guard.webhookName" . }}
{{- else }}
  tlsCert: /etc/codeframe-guard/tls/tls.crt
  tlsKey: /etc/codeframe-guard/tls/tls.key
  tlsSecret: ""
  webhookConfiguration: ""
  service: ""
{{- end }}
  kubeconfig: ""
  networkPolicyFiles: []
{{- end }}

{{/* Chart-level consistency checks that a JSON schema cannot express. */}}
{{- define "codeframe-guard.validate" -}}
{{- if and .Values.agent.enabled (eq .Values.agent.namespace .Release.Namespace) }}
{{- fail (printf "agent.namespace (%s) must differ from the release namespace: the chart creates it labelled pod-security.kubernetes.io/enforce=privileged" .Values.agent.namespace) }}
{{- end }}
{{- if and .Values.exampleWorker.enabled (or (eq .Values.exampleWorker.namespace .Release.Namespace) (and .Values.agent.enabled (eq .Values.exampleWorker.namespace .Values.agent.namespace))) }}
{{- fail "exampleWorker.namespace must differ from the release namespace and agent.namespace (both are excluded from the webhook)" }}
{{- end }}
{{- if and (eq .Values.tls.mode "existing-secret") (not .Values.tls.secretName) }}
{{- fail "tls.mode=existing-secret needs tls.secretName (a kubernetes.io/tls Secret in the release namespace)" }}
{{- end }}
{{- if and (eq .Values.tls.mode "existing-secret") (not .Values.tls.caBundle) }}
{{- fail "tls.mode=existing-secret needs tls.caBundle (PEM of the CA that signed the Secret's certificate)" }}
{{- end }}
{{- if and (ne .Values.tls.mode "existing-secret") .Values.tls.caBundle }}
{{- fail (printf "tls.caBundle is only used with tls.mode=existing-secret (mode is %s)" .Values.tls.mode) }}
{{- end }}
{{- if and (eq .Values.tls.mode "cert-manager") (not (.Capabilities.APIVersions.Has "cert-manager.io/v1")) }}
{{- fail "tls.mode=cert-manager needs cert-manager installed (API cert-manager.io/v1 not found in this cluster). Install cert-manager first, or use tls.mode=self-managed (the default)." }}
{{- end }}
{{- end }}
