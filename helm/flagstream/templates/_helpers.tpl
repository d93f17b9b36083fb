{{/* Names and labels. */}}

{{- define "flagstream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Kept at 40 characters so the longest suffix ("-consumer-metrics") still fits a DNS label. */}}
{{- define "flagstream.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "flagstream.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flagstream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flagstream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "flagstream.labels" -}}
helm.sh/chart: {{ include "flagstream.chart" . }}
{{ include "flagstream.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flagstream
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of one component: (dict "ctx" $ "component" "api"). */}}
{{- define "flagstream.componentLabels" -}}
{{ include "flagstream.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "flagstream.componentSelector" -}}
{{ include "flagstream.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "flagstream.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flagstream.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "flagstream.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The Secret the workloads read: the user's, or the one this chart renders. */}}
{{- define "flagstream.secretName" -}}
{{- default (include "flagstream.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{/*
Validation that the schema cannot express. Included by every workload template, so any
`helm install/upgrade/template` stops here with one clear message before anything is
applied. Nothing ever falls back to a default secret.
*/}}
{{- define "flagstream.validate" -}}
{{- $v := .Values -}}
{{- $s := $v.secrets -}}
{{- if $v.existingSecret -}}
  {{- range $key, $val := $s -}}
    {{- if $val -}}
      {{- fail (printf "secrets.%s is set together with existingSecret %q: put every secret in that Secret and leave the secrets block empty" $key $v.existingSecret) -}}
    {{- end -}}
  {{- end -}}
{{- else -}}
  {{- $hint := "(or set existingSecret to a Secret you manage; see the chart README)" -}}
  {{- $_ := required (printf "secrets.databaseUrl is required %s" $hint) $s.databaseUrl -}}
  {{- if eq $v.auth.jwt.algorithm "HS256" -}}
    {{- $key := required (printf "secrets.jwtSecretKey is required with auth.jwt.algorithm HS256 %s" $hint) $s.jwtSecretKey -}}
    {{- if lt (len $key) 32 -}}
      {{- fail "secrets.jwtSecretKey must be at least 32 bytes (openssl rand -base64 48)" -}}
    {{- end -}}
  {{- else -}}
    {{- $_ := required (printf "secrets.jwtPrivateKey is required with auth.jwt.algorithm EdDSA %s" $hint) $s.jwtPrivateKey -}}
    {{- $_ := required (printf "secrets.jwtPublicKey is required with auth.jwt.algorithm EdDSA %s" $hint) $s.jwtPublicKey -}}
  {{- end -}}
  {{- if $v.encryption.enabled -}}
    {{- if $v.encryption.keyring -}}
      {{- $_ := required (printf "secrets.encryptionKeys is required with encryption.keyring %s" $hint) $s.encryptionKeys -}}
    {{- else -}}
      {{- $_ := required (printf "secrets.encryptionKey is required with encryption.enabled (openssl rand -base64 32) %s" $hint) $s.encryptionKey -}}
    {{- end -}}
  {{- end -}}
  {{- if $v.bootstrapAdmin.enabled -}}
    {{- $pw := required (printf "secrets.bootstrapAdminPassword is required with bootstrapAdmin.enabled %s" $hint) $s.bootstrapAdminPassword -}}
    {{- if lt (len $pw) 12 -}}
      {{- fail "secrets.bootstrapAdminPassword must be at least 12 characters" -}}
    {{- end -}}
  {{- end -}}
  {{- if $v.kafka.sasl.enabled -}}
    {{- $_ := required (printf "secrets.kafkaSaslPassword is required with kafka.sasl.enabled %s" $hint) $s.kafkaSaslPassword -}}
  {{- end -}}
  {{- if and $v.kafka.tls.enabled $v.kafka.tls.customCA -}}
    {{- $_ := required (printf "secrets.kafkaTlsCa is required with kafka.tls.customCA %s" $hint) $s.kafkaTlsCa -}}
  {{- end -}}
  {{- if and $v.kafka.tls.enabled $v.kafka.tls.clientAuth -}}
    {{- $_ := required (printf "secrets.kafkaTlsCert is required with kafka.tls.clientAuth %s" $hint) $s.kafkaTlsCert -}}
    {{- $_ := required (printf "secrets.kafkaTlsKey is required with kafka.tls.clientAuth %s" $hint) $s.kafkaTlsKey -}}
  {{- end -}}
{{- end -}}
{{- if and (eq $v.consumer.storeContent "encrypted") (not $v.encryption.enabled) -}}
  {{- fail "consumer.storeContent encrypted needs encryption.enabled: the consumer refuses to start without a content key" -}}
{{- end -}}
{{- $_ := required "kafka.bootstrapServers is required (host:port,…)" $v.kafka.bootstrapServers -}}
{{- if and $v.kafka.sasl.enabled (not $v.kafka.sasl.username) -}}
  {{- fail "kafka.sasl.username is required with kafka.sasl.enabled" -}}
{{- end -}}
{{- if and (gt (int $v.kafka.topicPartitions) 0) (gt (int $v.consumer.replicas) (int $v.kafka.topicPartitions)) -}}
  {{- fail (printf "consumer.replicas (%d) is above kafka.topicPartitions (%d): the extra consumers would sit idle with no partition assigned" (int $v.consumer.replicas) (int $v.kafka.topicPartitions)) -}}
{{- end -}}
{{- if and $v.api.autoscaling.enabled (lt (int $v.api.autoscaling.maxReplicas) (int $v.api.autoscaling.minReplicas)) -}}
  {{- fail "api.autoscaling.maxReplicas must be at least api.autoscaling.minReplicas" -}}
{{- end -}}
{{- if and $v.ingress.enabled (not $v.ingress.hosts) -}}
  {{- fail "ingress.hosts is empty: list at least one host" -}}
{{- end -}}
{{- if and $v.ingress.enabled (not $v.ingress.tls) (not $v.ingress.tlsTerminatedUpstream) -}}
  {{- fail "ingress.tls is empty: passwords and login tokens would cross the ingress in clear text; configure ingress.tls or set ingress.tlsTerminatedUpstream: true" -}}
{{- end -}}
{{- if $v.networkPolicy.enabled -}}
  {{- if not $v.networkPolicy.postgres.to -}}
    {{- fail "networkPolicy.postgres.to is empty: list the PostgreSQL peers (ipBlock or selectors) the pods may reach" -}}
  {{- end -}}
  {{- if not $v.networkPolicy.kafka.to -}}
    {{- fail "networkPolicy.kafka.to is empty: list the Kafka broker peers (ipBlock or selectors) the consumer may reach" -}}
  {{- end -}}
{{- end -}}
{{- end -}}

{{/* Key names inside the Secret; the README documents them for existingSecret users. */}}
{{- define "flagstream.encryptionEnv" -}}
{{- if .Values.encryption.enabled }}
{{- $key := ternary "ENCRYPTION_KEYS" "ENCRYPTION_KEY" .Values.encryption.keyring }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ include "flagstream.secretName" . }}
      key: {{ $key }}
{{- end }}
{{- end -}}

{{- define "flagstream.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "flagstream.secretName" . }}
      key: DATABASE_URL
{{- end -}}

{{/*
Hash of what the pods read, so `helm upgrade` rolls them when it changes. With
existingSecret the content is not ours to read: only its name is hashed, and a rotation
there needs a `kubectl rollout restart` (see the README).
*/}}
{{- define "flagstream.secretChecksum" -}}
{{- if .Values.existingSecret -}}
{{- printf "existing:%s" .Values.existingSecret | sha256sum -}}
{{- else -}}
{{- include "flagstream.secretData" . | sha256sum -}}
{{- end -}}
{{- end -}}

{{/* Pod- and container-level hardening shared by every pod the chart creates. */}}
{{- define "flagstream.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "flagstream.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Init container that holds a Deployment until the migration Job made the schema current. */}}
{{- define "flagstream.waitForSchema" -}}
- name: wait-for-schema
  image: {{ include "flagstream.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command:
    - flagstream-api
    - migrate
    - --check
    - --wait-secs
    - {{ .Values.migrations.waitSeconds | int64 | quote }}
  env:
    {{- include "flagstream.databaseEnv" . | nindent 4 }}
    - name: LOG_FORMAT
      value: {{ .Values.logFormat | quote }}
  securityContext:
    {{- include "flagstream.containerSecurityContext" . | nindent 4 }}
  resources:
    {{- toYaml .Values.migrations.resources | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
{{- end -}}
