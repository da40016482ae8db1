{{/* The release's full name: the release name, prefixed unless it names the chart already. */}}
{{- define "dataproduct-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the operator's pod. */}}
{{- define "dataproduct-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels that select the standalone catalog's pods (never the operator's). */}}
{{- define "dataproduct-operator.catalogSelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}-catalog
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object of the release. */}}
{{- define "dataproduct-operator.labels" -}}
{{ include "dataproduct-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "dataproduct-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dataproduct-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
