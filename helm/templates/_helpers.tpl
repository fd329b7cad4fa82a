{{/* Chart name, truncated to the 63 characters Kubernetes allows. */}}
{{- define "fleetwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; components append "-server", "-worker", ... */}}
{{- define "fleetwatch.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "fleetwatch.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "fleetwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: call with (dict "ctx" $ "component" "server"). */}}
{{- define "fleetwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fleetwatch.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "fleetwatch.componentLabels" -}}
{{ include "fleetwatch.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "fleetwatch.image" -}}
{{ printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) | quote }}
{{- end }}

{{/* The ServiceAccount of one component (its own when the chart creates them): (dict "ctx" $ "component" "server"). */}}
{{- define "fleetwatch.serviceAccountName" -}}
{{- if .ctx.Values.serviceAccount.create }}
{{- printf "%s-%s" (include "fleetwatch.fullname" .ctx) .component }}
{{- else }}
{{- default "default" .ctx.Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "fleetwatch.agentSecretName" -}}
{{- default (printf "%s-agent" (include "fleetwatch.fullname" .)) .Values.agentExistingSecret }}
{{- end }}

{{- define "fleetwatch.secretName" -}}
{{- default (include "fleetwatch.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* Non-secret settings as a flat map; the ConfigMap holds them and the migrations Job inlines them. */}}
{{- define "fleetwatch.configData" -}}
{{- $c := .Values.config -}}
ALLOWED_HOSTS: {{ append $c.allowedHosts "localhost" | uniq | join "," | quote }}
CSRF_TRUSTED_ORIGINS: {{ join "," $c.csrfTrustedOrigins | quote }}
DEBUG: "false"
FLEETWATCH_STREAM_PREFIX: {{ $c.streamPrefix | quote }}
STREAM_SHARDS: {{ $c.streams.shards | int64 | quote }}
STREAM_REDIS_CLUSTER: {{ $c.streams.redisCluster | quote }}
LOG_LEVEL: {{ $c.logLevel | quote }}
LOG_FORMAT: {{ $c.logFormat | quote }}
RAW_RETENTION_DAYS: {{ $c.retention.rawDays | quote }}
ROLLUP_1M_RETENTION_DAYS: {{ $c.retention.rollup1mDays | quote }}
ROLLUP_1H_RETENTION_DAYS: {{ $c.retention.rollup1hDays | quote }}
LOG_RETENTION_DAYS: {{ $c.retention.logDays | quote }}
INGEST_CHUNK: {{ $c.ingest.chunk | int64 | quote }}
INGEST_CHUNK_SAMPLES: {{ $c.ingest.chunkSamples | int64 | quote }}
ALERT_CHECK_INTERVAL: {{ $c.alerting.checkInterval | quote }}
ALERT_COOLDOWN_PERIOD: {{ $c.alerting.cooldownPeriod | quote }}
ALERT_EXTERNAL_URL: {{ $c.alerting.externalUrl | quote }}
ENABLE_EMAIL_ALERTS: {{ $c.alerting.enableEmail | quote }}
ENABLE_SLACK_ALERTS: {{ $c.alerting.enableSlack | quote }}
SMTP_SERVER: {{ $c.alerting.smtpServer | quote }}
SMTP_PORT: {{ $c.alerting.smtpPort | quote }}
SMTP_USERNAME: {{ $c.alerting.smtpUsername | quote }}
ALERT_FROM_EMAIL: {{ $c.alerting.fromEmail | quote }}
ALERT_TO_EMAILS: {{ join "," $c.alerting.toEmails | quote }}
FLEETWATCH_ALLOWED_TARGETS: {{ join "," $c.allowedTargets | quote }}
QUERY_TIMEOUT_MS: {{ $c.queryTimeoutMs | int64 | quote }}
PROMQL_RESULTS_CACHE: {{ $c.promqlResultsCache | quote }}
LOG_SEARCH_BUDGET_MS: {{ $c.logSearch.budgetMs | int64 | quote }}
LOG_SEARCH_MORE_BUDGET_MS: {{ $c.logSearch.moreBudgetMs | int64 | quote }}
SESSION_COOKIE_SECURE: {{ $c.https.secureCookies | quote }}
CSRF_COOKIE_SECURE: {{ $c.https.secureCookies | quote }}
SECURE_SSL_REDIRECT: {{ $c.https.sslRedirect | quote }}
SECURE_HSTS_SECONDS: {{ $c.https.hstsSeconds | int64 | quote }}
SECURE_HSTS_INCLUDE_SUBDOMAINS: {{ $c.https.hstsIncludeSubdomains | quote }}
SECURE_HSTS_PRELOAD: {{ $c.https.hstsPreload | quote }}
SECURE_PROXY_SSL_HEADER: {{ $c.https.proxySslHeader | quote }}
{{- end }}

{{/* Secret settings as env entries reading the chart's Secret (or existingSecret). */}}
{{- define "fleetwatch.secretEnv" -}}
{{- $secret := include "fleetwatch.secretName" . -}}
{{- range $key := list "DATABASE_URL" "REDIS_URL" "SECRET_KEY" }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
{{- end }}
{{- range $key := list "SMTP_PASSWORD" "SLACK_WEBHOOK_URL" "STREAM_REDIS_URL" "DATABASE_REPLICA_URL" }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
      optional: true
{{- end }}
{{- end }}

{{/* The env of the server, worker and scheduler containers. */}}
{{- define "fleetwatch.processEnv" -}}
{{ include "fleetwatch.secretEnv" . }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by every fleetwatch pod. */}}
{{- define "fleetwatch.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/* A writable /tmp for a read-only root filesystem (gunicorn heartbeats, temp files). */}}
{{- define "fleetwatch.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}
{{- define "fleetwatch.tmpVolume" -}}
- name: tmp
  emptyDir: {}
{{- end }}

{{/* A rolling-restart trigger when the settings change. */}}
{{- define "fleetwatch.configChecksum" -}}
checksum/config: {{ include "fleetwatch.configData" . | sha256sum }}
{{- end }}

{{/* SECRET_KEY: the value given, else the one already in the release's Secret, else a new random one. */}}
{{- define "fleetwatch.secretKey" -}}
{{- if .Values.secrets.secretKey }}
{{- .Values.secrets.secretKey }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "fleetwatch.fullname" .) }}
{{- if and $existing $existing.data (hasKey $existing.data "SECRET_KEY") }}
{{- index $existing.data "SECRET_KEY" | b64dec }}
{{- else }}
{{- randAlphaNum 50 }}
{{- end }}
{{- end }}
{{- end }}

{{/* Data of the chart-managed Secret (base64-encoded). */}}
{{- define "fleetwatch.secretData" -}}
DATABASE_URL: {{ .Values.secrets.databaseUrl | b64enc | quote }}
REDIS_URL: {{ .Values.secrets.redisUrl | b64enc | quote }}
SECRET_KEY: {{ include "fleetwatch.secretKey" . | b64enc | quote }}
{{- with .Values.secrets.smtpPassword }}
SMTP_PASSWORD: {{ . | b64enc | quote }}
{{- end }}
{{- with .Values.secrets.slackWebhookUrl }}
SLACK_WEBHOOK_URL: {{ . | b64enc | quote }}
{{- end }}
{{- with .Values.secrets.streamRedisUrl }}
STREAM_REDIS_URL: {{ . | b64enc | quote }}
{{- end }}
{{- with .Values.secrets.databaseReplicaUrl }}
DATABASE_REPLICA_URL: {{ . | b64enc | quote }}
{{- end }}
{{- end }}

{{/* A probe on the health endpoint: call with (dict "path" ...). Host is pinned so that ALLOWED_HOSTS (which always has localhost) accepts it. */}}
{{- define "fleetwatch.healthGet" -}}
httpGet:
  path: {{ .path }}
  port: http
  httpHeaders:
    - name: Host
      value: localhost
{{- end }}

{{/* Server pods a drain can count on: the autoscaler's floor when it owns the replica count, else server.replicas. */}}
{{- define "fleetwatch.serverFloor" -}}
{{- if .Values.server.autoscaling.enabled }}
{{- int .Values.server.autoscaling.minReplicas }}
{{- else }}
{{- int .Values.server.replicas }}
{{- end }}
{{- end }}

{{/* "true" when the server PodDisruptionBudget is wanted and can be met while a node drains (more pods than minAvailable). */}}
{{- define "fleetwatch.serverPdbEnabled" -}}
{{- $pdb := .Values.server.podDisruptionBudget }}
{{- if and $pdb.enabled (gt (int (include "fleetwatch.serverFloor" .)) (int $pdb.minAvailable)) }}true{{ end }}
{{- end }}
