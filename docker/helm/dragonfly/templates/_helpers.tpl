{{/* The release's base name: the release name when it already says dragonfly. */}}
{{- define "dragonfly.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object of a component; call with (dict "root" $ "component" "manager"). */}}
{{- define "dragonfly.labels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: dragonfly
{{- end -}}

{{/* What a component's Services and workloads select on. */}}
{{- define "dragonfly.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "dragonfly.image" -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- end -}}

{{/* The manager's gRPC address as the other components reach it. */}}
{{- define "dragonfly.managerAddr" -}}
{{- printf "%s-manager.%s.svc.cluster.local:65003" (include "dragonfly.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/* The config keys for TLS, as a YAML map (empty when TLS is off). */}}
{{- define "dragonfly.tlsConfig" -}}
{{- if .Values.tls.enabled }}
tls:
  cert: /etc/dragonfly/tls/tls.crt
  key: /etc/dragonfly/tls/tls.key
  caCert: /etc/dragonfly/tls/ca.crt
{{- end }}
{{- end -}}

{{- define "dragonfly.tlsVolumeMount" -}}
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: /etc/dragonfly/tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "dragonfly.tlsVolume" -}}
{{- if .Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ .Values.tls.secretName }}
{{- end }}
{{- end -}}

{{/* The container hardening every container of ours gets. */}}
{{- define "dragonfly.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* The dfdaemon port that answers HTTP/1.1 (/healthy, /metrics, the mirror). */}}
{{- define "dragonfly.clientHTTPPortName" -}}
{{- if .Values.tls.enabled -}}http{{- else -}}peer{{- end -}}
{{- end -}}

{{/* A ServiceMonitor; call with (dict "root" $ "component" "scheduler" "values" .Values.scheduler "port" "metrics"). */}}
{{- define "dragonfly.serviceMonitor" -}}
{{- if .values.metrics.serviceMonitor.enable }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "dragonfly.fullname" .root }}-{{ .component }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "dragonfly.labels" . | nindent 4 }}
    {{- with .values.metrics.serviceMonitor.additionalLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "dragonfly.selector" . | nindent 6 }}
  endpoints:
    - port: {{ .port }}
      path: /metrics
      interval: {{ .values.metrics.serviceMonitor.interval }}
      {{- with .relabelings }}
      relabelings:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
{{- end -}}
