{{/* The release's full name: "rightsizer" for a release of that name. */}}
{{- define "rightsizer.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The pod's selector labels: those of manifests/ (its NetworkPolicy and Service select
     the same pod). One operator per cluster: the CRD and ClusterRole are cluster-wide. */}}
{{- define "rightsizer.selectorLabels" -}}
app.kubernetes.io/name: rightsizer
app.kubernetes.io/component: operator
{{- end -}}

{{- define "rightsizer.labels" -}}
app.kubernetes.io/name: rightsizer
app.kubernetes.io/part-of: rightsizer
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "rightsizer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rightsizer.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "rightsizer.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}
