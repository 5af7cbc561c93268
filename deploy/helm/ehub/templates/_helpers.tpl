{{/* The labels that select one service's pods: ehub.selector (dict "root" $ "name" "gateway") */}}
{{- define "ehub.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* The environment every process of the hub gets, the services and their migration Jobs. */}}
{{- define "ehub.env" -}}
- {name: EHUB_HUB_ID, value: {{ .Values.hub.id | quote }}}
- {name: EHUB_HUB_NAME, value: {{ .Values.hub.name | quote }}}
# The URL holds the database password: from a Secret, never a value in the manifest.
- name: EHUB_DATABASE_URL
  valueFrom: {secretKeyRef: {name: {{ .Values.database.urlSecret | quote }}, key: {{ .Values.database.urlKey | quote }}}}
- {name: EHUB_KAFKA_BOOTSTRAP, value: {{ .Values.kafka.bootstrap | quote }}}
- {name: EHUB_OTLP_ENDPOINT, value: {{ .Values.otlpEndpoint | quote }}}
# The gateway's credential, which every service requires of partner calls.
- name: EHUB_INTERNAL_TOKEN
  valueFrom: {secretKeyRef: {name: {{ .Values.internalTokenSecret | quote }}, key: internal-token}}
{{- end }}
