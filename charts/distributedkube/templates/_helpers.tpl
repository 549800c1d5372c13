{{/* The release's resource names and labels. */}}
{{- define "dk.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dk.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dk.labels" -}}
{{ include "dk.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* A docker config.json for one build_secret entry. */}}
{{- define "dk.dockerconfig" -}}
{{- $host := default "https://index.docker.io/v1/" .registry -}}
{{- $auth := printf "%s:%s" .username .password | b64enc -}}
{{- dict "auths" (dict $host (dict "username" .username "password" .password "auth" $auth)) | toJson -}}
{{- end -}}
