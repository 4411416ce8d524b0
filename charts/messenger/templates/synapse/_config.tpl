{{/* Synapse config fragments shared by the ConfigMap templates. */}}

{{- define "messenger.synapse.database" -}}
database:
  name: psycopg2
  txn_limit: 10000
  args:
    host: {{ include "messenger.svcHost" (dict "root" .root "name" (printf "%s-pg-pooler-rw" .root.Release.Name)) }}
    port: 5432
    user: synapse
    dbname: synapse
    sslmode: prefer
    application_name: {{ .name }}
    cp_min: {{ .db.cpMin }}
    cp_max: {{ .db.cpMax }}
    keepalives: 1
    keepalives_idle: 10
    keepalives_interval: 10
    keepalives_count: 3
{{- end -}}

{{- define "messenger.synapse.listeners" -}}
- type: http
  port: 8008
  bind_addresses: ["0.0.0.0"]
  tls: false
  x_forwarded: true
  resources:
    - names: {{ toJson .resources }}
      compress: false
- type: http
  port: 9093
  bind_addresses: ["0.0.0.0"]
  tls: false
  x_forwarded: false
  resources:
    - names: [replication]
      compress: false
- type: metrics
  port: 9000
  bind_addresses: ["0.0.0.0"]
{{- end -}}
