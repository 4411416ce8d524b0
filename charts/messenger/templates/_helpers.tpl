{{/*
Shared partials: names, labels, hosts, pod and container security.
*/}}

{{- define "messenger.name" -}}
{{- printf "%s-%s" .root.Release.Name .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "messenger.labels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/part-of: messenger
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "messenger.selector" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* A host name under the site domain: (dict "root" $ "host" "matrix") */}}
{{- define "messenger.host" -}}
{{- printf "%s.%s" (index .root.Values.hosts .host) .root.Values.domain -}}
{{- end -}}

{{- define "messenger.svcHost" -}}
{{- printf "%s.%s.svc.cluster.local" .name .root.Release.Namespace -}}
{{- end -}}

{{/* Pod-level security context: restricted Pod Security. (dict "uid" 10991) */}}
{{- define "messenger.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "messenger.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Spreads replicas of one component over nodes. */}}
{{- define "messenger.spread" -}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "messenger.selector" . | nindent 8 }}
{{- end -}}

{{/* Annotation that restarts pods when a rendered config changes. */}}
{{- define "messenger.checksum" -}}
checksum/config: {{ . | sha256sum }}
{{- end -}}

{{/* A Kubernetes quantity in Mi, Gi or Ti as whole GiB (rounded up). */}}
{{- define "messenger.gib" -}}
{{- if hasSuffix "Ti" . }}{{ mul (trimSuffix "Ti" . | int) 1024 }}{{ else if hasSuffix "Gi" . }}{{ trimSuffix "Gi" . | int }}{{ else if hasSuffix "Mi" . }}{{ div (add (trimSuffix "Mi" . | int) 1023) 1024 }}{{ else }}{{ fail (printf "storage size %q: use Mi, Gi or Ti" .) }}{{ end -}}
{{- end -}}

{{/* A CPU quantity ("500m", "2", 1.5) in millicores. */}}
{{- define "messenger.millicores" -}}
{{- $q := toString . -}}
{{- if hasSuffix "m" $q }}{{ trimSuffix "m" $q | int }}{{ else }}{{ mulf (float64 $q) 1000 | int }}{{ end -}}
{{- end -}}

{{/* A memory quantity (Ki, Mi, Gi, Ti) in MiB, rounded up. */}}
{{- define "messenger.mib" -}}
{{- $q := toString . -}}
{{- if hasSuffix "Ti" $q }}{{ mul (trimSuffix "Ti" $q | int) 1048576 }}{{ else if hasSuffix "Gi" $q }}{{ mul (trimSuffix "Gi" $q | int) 1024 }}{{ else if hasSuffix "Mi" $q }}{{ trimSuffix "Mi" $q | int }}{{ else if hasSuffix "Ki" $q }}{{ div (add (trimSuffix "Ki" $q | int) 1023) 1024 }}{{ else }}{{ fail (printf "memory quantity %q: use Ki, Mi, Gi or Ti" $q) }}{{ end -}}
{{- end -}}

{{/* What the stack requests in total: {"cpu": millicores, "memory": MiB}. With
gateway.envoy.manage, the Envoy proxies Envoy Gateway starts from the chart's EnvoyProxy count
too (in gateway.namespace, as the operators' PostgreSQL and PgBouncer pods count): each is the
envoy container (gateway.envoy.resources) plus the shutdown-manager sidecar, whose request
Envoy Gateway v1.9 fixes at 10m CPU and 32Mi (the capacity crate's SHUTDOWN_MANAGER_CPU and
SHUTDOWN_MANAGER_MIB; docs/capacity.md). */}}
{{- define "messenger.requests" -}}
{{- $t := include "messenger.topology" . | fromYaml -}}
{{- $v := .Values -}}
{{- $items := list (list 1 $v.synapse.main.resources) -}}
{{- range $t.pools }}{{ $items = append $items (list .replicas .resources) }}{{ end -}}
{{- $items = append $items (list $v.haproxy.replicas $v.haproxy.resources) -}}
{{- $items = append $items (list $v.element.replicas $v.element.resources) -}}
{{- $items = append $items (list $v.synapseAdmin.replicas $v.synapseAdmin.resources) -}}
{{- $items = append $items (list $v.valkey.replicas $v.valkey.resources) -}}
{{- $items = append $items (list $v.valkey.sentinel.replicas $v.valkey.sentinel.resources) -}}
{{- $items = append $items (list $v.valkey.proxy.replicas $v.valkey.proxy.resources) -}}
{{- $items = append $items (list $v.postgres.instances $v.postgres.resources) -}}
{{- $items = append $items (list $v.pooler.instances $v.pooler.resources) -}}
{{- /* monitoring: the redis_exporter sidecar in every Valkey and Sentinel pod (templates/valkey) */ -}}
{{- if $v.monitoring.enabled }}{{ $items = append $items (list (add $v.valkey.replicas $v.valkey.sentinel.replicas) (dict "requests" (dict "cpu" "10m" "memory" "32Mi") "limits" (dict "memory" "64Mi"))) }}{{ end -}}
{{- if eq $v.objectStorage.mode "garage" }}{{ $items = append $items (list $v.garage.replicas $v.garage.resources) }}{{ end -}}
{{- if $v.turn.enabled }}{{ $items = append $items (list (len $v.turn.externalIPs) $v.coturn.resources) }}{{ end -}}
{{- if $v.calls.enabled }}{{ $items = append $items (list $v.livekit.replicas $v.livekit.resources) }}{{ $items = append $items (list 1 $v.lkJwtService.resources) }}{{ end -}}
{{- if $v.antivirus.enabled }}{{ $items = append $items (list $v.antivirus.clamd.replicas $v.antivirus.clamd.resources) }}{{ $items = append $items (list $v.antivirus.contentScanner.replicas $v.antivirus.contentScanner.resources) }}{{ end -}}
{{- if $v.gateway.envoy.manage -}}
{{- $items = append $items (list $v.gateway.envoy.replicas $v.gateway.envoy.resources) -}}
{{- $items = append $items (list $v.gateway.envoy.replicas (dict "requests" (dict "cpu" "10m" "memory" "32Mi"))) -}}
{{- end -}}
{{- $cpu := 0 -}}{{- $mem := 0 -}}
{{- range $items -}}
{{- $n := int (index . 0) -}}
{{- $r := (index . 1).requests -}}
{{- $cpu = add $cpu (mul $n (include "messenger.millicores" $r.cpu | int)) -}}
{{- $mem = add $mem (mul $n (include "messenger.mib" $r.memory | int)) -}}
{{- end -}}
{{- toJson (dict "cpu" $cpu "memory" $mem) -}}
{{- end -}}

{{/* valkey.maxmemory ("200mb", "4gb"; Valkey's mb and gb are MiB and GiB) in MiB. */}}
{{- define "messenger.valkeyMaxmemoryMiB" -}}
{{- $q := toString .Values.valkey.maxmemory -}}
{{- if hasSuffix "gb" $q }}{{ mul (trimSuffix "gb" $q | int) 1024 }}{{ else if hasSuffix "mb" $q }}{{ trimSuffix "mb" $q | int }}{{ else }}{{ fail (printf "valkey.maxmemory %q: use mb or gb" $q) }}{{ end -}}
{{- end -}}

{{/* PostgreSQL's memory settings from the instances' memory limit (docs/capacity.md#postgresql),
in MB (PostgreSQL's MB is MiB): shared_buffers 25%, effective_cache_size 75%,
maintenance_work_mem min(limit/16, 1024MB). work_mem is postgres.workMem, checked in
_validate.tpl: max_connections x work_mem within 25% of the limit. */}}
{{- define "messenger.postgresMemory" -}}
{{- $limit := include "messenger.mib" .Values.postgres.resources.limits.memory | int -}}
{{- toJson (dict "limit" $limit "sharedBuffers" (div $limit 4) "effectiveCacheSize" (div (mul $limit 3) 4) "maintenanceWorkMem" (min 1024 (div $limit 16))) -}}
{{- end -}}

{{/* postgres.workMem ("2MB", "512kB", "1GB") in kB. */}}
{{- define "messenger.pgKiB" -}}
{{- $q := toString . -}}
{{- if hasSuffix "GB" $q }}{{ mul (trimSuffix "GB" $q | int) 1048576 }}{{ else if hasSuffix "MB" $q }}{{ mul (trimSuffix "MB" $q | int) 1024 }}{{ else if hasSuffix "kB" $q }}{{ trimSuffix "kB" $q | int }}{{ else }}{{ fail (printf "PostgreSQL memory %q: use kB, MB or GB" $q) }}{{ end -}}
{{- end -}}

{{/* What the release namespace's pods ask in total, for its ResourceQuota: {"cpu": millicores,
"memory": MiB (requests), "limitsMemory": MiB}. The same workloads as messenger.requests less
those in other namespaces (coturn in its own; Envoy proxies unless gateway.namespace is the
release namespace), plus the barman-cloud sidecar in each PostgreSQL instance. */}}
{{- define "messenger.namespaceTotals" -}}
{{- $t := include "messenger.topology" . | fromYaml -}}
{{- $v := .Values -}}
{{- $items := list (list 1 $v.synapse.main.resources) -}}
{{- range $t.pools }}{{ $items = append $items (list .replicas .resources) }}{{ end -}}
{{- $items = append $items (list $v.haproxy.replicas $v.haproxy.resources) -}}
{{- $items = append $items (list $v.element.replicas $v.element.resources) -}}
{{- $items = append $items (list $v.synapseAdmin.replicas $v.synapseAdmin.resources) -}}
{{- $items = append $items (list $v.valkey.replicas $v.valkey.resources) -}}
{{- $items = append $items (list $v.valkey.sentinel.replicas $v.valkey.sentinel.resources) -}}
{{- $items = append $items (list $v.valkey.proxy.replicas $v.valkey.proxy.resources) -}}
{{- $items = append $items (list $v.postgres.instances $v.postgres.resources) -}}
{{- $items = append $items (list $v.postgres.instances $v.postgres.sidecarResources) -}}
{{- $items = append $items (list $v.pooler.instances $v.pooler.resources) -}}
{{- /* monitoring: the redis_exporter sidecar in every Valkey and Sentinel pod (templates/valkey) */ -}}
{{- if $v.monitoring.enabled }}{{ $items = append $items (list (add $v.valkey.replicas $v.valkey.sentinel.replicas) (dict "requests" (dict "cpu" "10m" "memory" "32Mi") "limits" (dict "memory" "64Mi"))) }}{{ end -}}
{{- if eq $v.objectStorage.mode "garage" }}{{ $items = append $items (list $v.garage.replicas $v.garage.resources) }}{{ end -}}
{{- if $v.calls.enabled }}{{ $items = append $items (list 1 $v.lkJwtService.resources) }}{{ if eq $v.calls.network "nodePort" }}{{ $items = append $items (list $v.livekit.replicas $v.livekit.resources) }}{{ end }}{{ end -}}
{{- if $v.antivirus.enabled }}{{ $items = append $items (list $v.antivirus.clamd.replicas $v.antivirus.clamd.resources) }}{{ $items = append $items (list $v.antivirus.contentScanner.replicas $v.antivirus.contentScanner.resources) }}{{ end -}}
{{- if and $v.gateway.envoy.manage (eq $v.gateway.namespace .Release.Namespace) -}}
{{- $items = append $items (list $v.gateway.envoy.replicas $v.gateway.envoy.resources) -}}
{{- $items = append $items (list $v.gateway.envoy.replicas (dict "requests" (dict "cpu" "10m" "memory" "32Mi") "limits" (dict "memory" "32Mi"))) -}}
{{- end -}}
{{- $cpu := 0 -}}{{- $mem := 0 -}}{{- $lim := 0 -}}
{{- range $items -}}
{{- $n := int (index . 0) -}}
{{- $r := index . 1 -}}
{{- $cpu = add $cpu (mul $n (include "messenger.millicores" $r.requests.cpu | int)) -}}
{{- $mem = add $mem (mul $n (include "messenger.mib" $r.requests.memory | int)) -}}
{{- $lim = add $lim (mul $n (include "messenger.mib" $r.limits.memory | int)) -}}
{{- end -}}
{{- toJson (dict "cpu" $cpu "memory" $mem "limitsMemory" $lim) -}}
{{- end -}}
