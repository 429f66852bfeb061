{{/* The chart's name, overridable with nameOverride. */}}
{{- define "switchboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the prefix of every object's name. */}}
{{- define "switchboard.fullname" -}}
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

{{- define "switchboard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "switchboard.labels" -}}
helm.sh/chart: {{ include "switchboard.chart" . }}
{{ include "switchboard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" "web"). */}}
{{- define "switchboard.componentSelectorLabels" -}}
{{ include "switchboard.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "switchboard.componentLabels" -}}
{{ include "switchboard.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "switchboard.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "switchboard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "switchboard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret with the database URL, the master key and the other secrets. */}}
{{- define "switchboard.secretName" -}}
{{- default (include "switchboard.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "switchboard.publicUrl" -}}
{{- $url := required "publicUrl is required: the public https:// address of the installation" .Values.publicUrl | trimSuffix "/" }}
{{- if not (or (hasPrefix "https://" $url) (hasPrefix "http://" $url)) }}
{{- fail (printf "publicUrl must start with https:// (or http://), not %q" $url) }}
{{- end }}
{{- $url }}
{{- end }}

{{- define "switchboard.ingressHost" -}}
{{- default (urlParse (include "switchboard.publicUrl" .)).hostname .Values.ingress.host }}
{{- end }}

{{/* An optional variable from the Secret: (dict "root" $ "name" "VAR" "key" "keyName"). */}}
{{- define "switchboard.optionalSecretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "switchboard.secretName" .root }}
      key: {{ .key }}
      optional: true
{{- end }}

{{/* The environment of the web and worker containers. */}}
{{- define "switchboard.env" -}}
- name: SWITCHBOARD_PUBLIC_URL
  value: {{ include "switchboard.publicUrl" . | quote }}
- name: SWITCHBOARD_BIND
  value: "0.0.0.0:8080"
- name: SWITCHBOARD_DATA_DIR
  value: /tmp/switchboard
- name: SWITCHBOARD_MASTER_KEY_FILE
  value: /etc/switchboard/keys/master.key
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "switchboard.secretName" . }}
      key: {{ .Values.secrets.keys.databaseUrl }}
{{ include "switchboard.optionalSecretEnv" (dict "root" . "name" "SWITCHBOARD_OLD_MASTER_KEYS" "key" .Values.secrets.keys.oldMasterKeys) }}
{{ include "switchboard.optionalSecretEnv" (dict "root" . "name" "SWITCHBOARD_SMTP_URL" "key" .Values.secrets.keys.smtpUrl) }}
{{ include "switchboard.optionalSecretEnv" (dict "root" . "name" "SWITCHBOARD_OAUTH_GOOGLE_CLIENT_SECRET" "key" .Values.secrets.keys.oauthGoogleClientSecret) }}
{{ include "switchboard.optionalSecretEnv" (dict "root" . "name" "SWITCHBOARD_OAUTH_GITHUB_CLIENT_SECRET" "key" .Values.secrets.keys.oauthGithubClientSecret) }}
{{ include "switchboard.optionalSecretEnv" (dict "root" . "name" "SWITCHBOARD_OAUTH_SSO_CLIENT_SECRET" "key" .Values.secrets.keys.oauthSsoClientSecret) }}
{{- /* Always: then /metrics is served on that port only, never on the main port the
       Ingress publishes. */}}
- name: SWITCHBOARD_METRICS_BIND
  value: {{ printf "0.0.0.0:%d" (int .Values.metrics.port) | quote }}
{{- if .Values.metrics.enabled }}
{{- with include "switchboard.metricsTokenSecret" . | fromYaml }}
- name: SWITCHBOARD_METRICS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key }}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Where the metrics token is, as YAML {name, key}; empty without a token. */}}
{{- define "switchboard.metricsTokenSecret" -}}
{{- $m := .Values.metrics }}
{{- if and $m.token $m.existingSecret }}
{{- fail "set metrics.token or metrics.existingSecret, not both" }}
{{- end }}
{{- if $m.existingSecret }}
name: {{ $m.existingSecret }}
key: {{ required "metrics.existingSecretKey is required with metrics.existingSecret" $m.existingSecretKey }}
{{- else if $m.token }}
name: {{ include "switchboard.fullname" . }}-metrics
key: token
{{- end }}
{{- end }}

{{/* The metrics port of the web and worker containers. */}}
{{- define "switchboard.metricsPort" -}}
- name: metrics
  containerPort: {{ int .Values.metrics.port }}
  protocol: TCP
{{- end }}

{{/* Pod annotations for Prometheus's pod discovery. */}}
{{- define "switchboard.metricsAnnotations" -}}
{{- if and .Values.metrics.enabled .Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.metrics.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{/* The volumes of the web and worker pods: the master key file and a writable /tmp. */}}
{{- define "switchboard.volumes" -}}
- name: master-key
  secret:
    secretName: {{ include "switchboard.secretName" . }}
    defaultMode: 0440
    items:
      - key: {{ .Values.secrets.keys.masterKey }}
        path: master.key
- name: tmp
  emptyDir: {}
{{- end }}

{{- define "switchboard.volumeMounts" -}}
- name: master-key
  mountPath: /etc/switchboard/keys
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* Roll the pods when their configuration changes. */}}
{{- define "switchboard.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- if and .Values.metrics.enabled .Values.metrics.token }}
checksum/metrics-secret: {{ include (print .Template.BasePath "/metrics.yaml") . | sha256sum }}
{{- end }}
{{- end }}
