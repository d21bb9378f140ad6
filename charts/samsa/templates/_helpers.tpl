{{/* The four services, in the order the chart renders them. */}}
{{- define "samsa.components" -}}
control receiver transformer deliverer
{{- end }}

{{/*
Ports of each service (DESIGN.md §5). "http" serves /metrics, /healthz and
/readyz on every service (the REST and ingest APIs too on control and
receiver); "grpc" is the control API and gRPC ingest.
*/}}
{{- define "samsa.ports" -}}
{{- $ports := dict
  "control" (dict "http" 8080 "grpc" 9090)
  "receiver" (dict "http" 8081 "grpc" 9091)
  "transformer" (dict "http" 8082)
  "deliverer" (dict "http" 8083) -}}
{{- toJson (index $ports .) -}}
{{- end }}

{{/*
The flags that make a service listen on every interface (they bind
127.0.0.1 by default).
*/}}
{{- define "samsa.listenArgs" -}}
{{- $ports := include "samsa.ports" . | fromJson -}}
{{- if hasKey $ports "grpc" }}
- --http-addr=0.0.0.0:{{ $ports.http }}
- --grpc-addr=0.0.0.0:{{ $ports.grpc }}
{{- else }}
- --admin-addr=0.0.0.0:{{ $ports.http }}
{{- end }}
{{- end }}

{{- define "samsa.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name; component objects append -<component>. */}}
{{- define "samsa.fullname" -}}
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

{{- define "samsa.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "samsa.labels" -}}
helm.sh/chart: {{ include "samsa.chart" . }}
app.kubernetes.io/name: {{ include "samsa.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: samsa
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of a component's objects; call with (dict "root" $ "name" "receiver"). */}}
{{- define "samsa.componentLabels" -}}
{{ include "samsa.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* Selector labels of a component; call with (dict "root" $ "name" "receiver"). */}}
{{- define "samsa.selectorLabels" -}}
app.kubernetes.io/name: {{ include "samsa.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "samsa.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "samsa.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "samsa.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end }}
{{- end }}

{{/* The Secret the chart creates for the Kafka password and control tokens. */}}
{{- define "samsa.secretName" -}}
{{ include "samsa.fullname" . }}
{{- end }}

{{- define "samsa.saslSecretName" -}}
{{- default (include "samsa.secretName" .) .Values.kafka.sasl.existingSecret }}
{{- end }}

{{- define "samsa.saslPasswordKey" -}}
{{- if .Values.kafka.sasl.existingSecret }}{{ .Values.kafka.sasl.passwordKey }}{{ else }}kafka-sasl-password{{ end }}
{{- end }}

{{- define "samsa.tokensSecretName" -}}
{{- default (include "samsa.secretName" .) .Values.auth.existingSecret }}
{{- end }}

{{- define "samsa.tokensKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey }}{{ else }}tokens{{ end }}
{{- end }}

{{/* The encryption keys live in a Secret of their own, kept on uninstall. */}}
{{- define "samsa.encryptionSecretName" -}}
{{- default (printf "%s-encryption" (include "samsa.fullname" .)) .Values.encryption.existingSecret }}
{{- end }}

{{- define "samsa.encryptionKey" -}}
{{- if .Values.encryption.existingSecret }}{{ .Values.encryption.existingSecretKey }}{{ else }}secret-keys{{ end }}
{{- end }}

{{/* Whether the chart must hold a Kafka SASL password. */}}
{{- define "samsa.saslPasswordInChart" -}}
{{- if and .Values.kafka.sasl.mechanism (not .Values.kafka.sasl.existingSecret) }}true{{ end }}
{{- end }}

{{/* Whether the chart must hold control tokens (given or generated). */}}
{{- define "samsa.tokensInChart" -}}
{{- if and (not .Values.auth.insecure) (not .Values.auth.existingSecret) }}true{{ end }}
{{- end }}

{{/* Whether control needs tokens at all. */}}
{{- define "samsa.tokensEnabled" -}}
{{- if not .Values.auth.insecure }}true{{ end }}
{{- end }}

{{/*
The control tokens the chart stores: the given ones, else the token it
generated on install (read back from the cluster), else a new one.
*/}}
{{- define "samsa.tokens" -}}
{{- if .Values.auth.tokens }}
{{- $out := list }}
{{- range .Values.auth.tokens }}
{{- $out = append $out (printf "%s:%s" .role .token) }}
{{- end }}
{{- join "," $out }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "samsa.secretName" .) }}
{{- if and $existing $existing.data (hasKey $existing.data "tokens") }}
{{- index $existing.data "tokens" | b64dec }}
{{- else }}
{{- printf "admin:%s" (randAlphaNum 40) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The encryption keys the chart stores: given, generated before, or new. */}}
{{- define "samsa.encryptionKeys" -}}
{{- if .Values.encryption.keys }}
{{- join "," .Values.encryption.keys }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "samsa.encryptionSecretName" .) }}
{{- if and $existing $existing.data (hasKey $existing.data "secret-keys") }}
{{- index $existing.data "secret-keys" | b64dec }}
{{- else }}
{{- printf "k1:%s" (randBytes 32) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The services that open sealed secrets and so need the encryption keys. */}}
{{- define "samsa.needsKeys" -}}
{{- if has . (list "control" "receiver" "deliverer") }}true{{ end }}
{{- end }}

{{/* The services that take --insecure. */}}
{{- define "samsa.takesInsecure" -}}
{{- if has . (list "control" "receiver") }}true{{ end }}
{{- end }}

{{/* Whether the pods mount Kafka TLS files: a CA, a client certificate, or both. */}}
{{- define "samsa.kafkaTLSFiles" -}}
{{- $tls := .Values.kafka.tls }}
{{- if and $tls.enabled (or (and $tls.existingSecret $tls.caKey) (and $tls.certKey $tls.keyKey (or $tls.clientCertSecret $tls.existingSecret))) }}true{{ end }}
{{- end }}
