{{/* The release's name, or <release>-g8s when it does not name g8s already (63 characters at most). */}}
{{- define "g8s.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "g8s.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "g8s.labels" -}}
{{ include "g8s.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "g8s.serviceAccountName" -}}
{{- default (include "g8s.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "g8s.secretName" -}}
{{- default (include "g8s.fullname" .) .Values.secret.existing -}}
{{- end -}}
