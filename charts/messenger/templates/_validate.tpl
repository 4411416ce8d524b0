{{/*
Cross-field checks the schema cannot express, gathered in one place: the chart fails with
every problem at once.
*/}}

{{/* Database connections: every Synapse process's cp_max, plus headroom for admin tasks. */}}
{{- define "messenger.dbClients" -}}
{{- $t := include "messenger.topology" . | fromYaml -}}
{{- $sum := int .Values.synapse.main.db.cpMax -}}
{{- range $t.pools }}{{ $sum = add $sum (mul (int .replicas) (int .db.cpMax)) }}{{ end -}}
{{- add $sum 10 -}}
{{- end -}}

{{- define "messenger.validate" -}}
{{- $errors := list -}}
{{- $v := .Values -}}
{{- if ne (toString $v.profile) (toString $v.sizing.profile) -}}
{{- $errors = append $errors (printf "profile: the site asks for profile %q but the sizing values are for %q: layer charts/messenger/profiles/%s.yaml after the site file" (toString $v.profile) (toString $v.sizing.profile) (toString $v.profile)) -}}
{{- end -}}
{{- $clients := int (include "messenger.dbClients" .) -}}
{{- /* The same rules as `installer capacity` (docs/capacity.md): pools within 80% of
max_connections less the reserve; requests within the nodes less a 10% system reserve. */ -}}
{{- $budget := sub (div (mul (int $v.postgres.maxConnections) 80) 100) (int $v.sizing.postgresReserve) -}}
{{- if gt $clients (int $budget) -}}
{{- $errors = append $errors (printf "postgres.maxConnections: Synapse may open %d connections (sum of cp_max plus 10) but 80%% of max_connections %d less the reserve of %d leaves %d" $clients (int $v.postgres.maxConnections) (int $v.sizing.postgresReserve) (int $budget)) -}}
{{- end -}}
{{- if gt (int $v.postgres.maxSyncReplicas) (sub (int $v.postgres.instances) 1) -}}
{{- $errors = append $errors (printf "postgres.maxSyncReplicas: %d synchronous replicas need at least %d instances" (int $v.postgres.maxSyncReplicas) (add 1 (int $v.postgres.maxSyncReplicas))) -}}
{{- end -}}
{{- if gt (int $v.postgres.minSyncReplicas) (int $v.postgres.maxSyncReplicas) -}}
{{- $errors = append $errors "postgres.minSyncReplicas: must not exceed maxSyncReplicas" -}}
{{- end -}}
{{- if and $v.turn.enabled (not $v.turn.externalIPs) -}}
{{- $errors = append $errors "turn.externalIPs: coturn is enabled but no address clients can reach is given" -}}
{{- end -}}
{{- if and $v.turn.enabled (not $v.turn.nodeSelector) -}}
{{- $errors = append $errors "turn.nodeSelector: coturn is enabled but no node label selects the TURN nodes" -}}
{{- end -}}
{{- if gt (int $v.turn.relayPortMin) (int $v.turn.relayPortMax) -}}
{{- $errors = append $errors "turn.relayPortMin: must not exceed turn.relayPortMax" -}}
{{- end -}}
{{- if and $v.federation.enabled (not $v.federation.allowList) -}}
{{- $errors = append $errors "federation.allowList: federation is enabled but no server is allowed (open federation is not supported on a closed network)" -}}
{{- end -}}
{{- if eq $v.objectStorage.mode "external" -}}
{{- range $f := list "endpoint" "credentialsSecret" -}}
{{- if not (index $v.objectStorage.external $f) -}}
{{- $errors = append $errors (printf "objectStorage.external.%s: required when objectStorage.mode is external" $f) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if gt (int $v.garage.replicationFactor) (int $v.garage.replicas) -}}
{{- $errors = append $errors (printf "garage.replicationFactor: %d copies need at least %d Garage nodes" (int $v.garage.replicationFactor) (int $v.garage.replicationFactor)) -}}
{{- end -}}
{{- if lt (int $v.valkey.sentinel.replicas) 3 -}}
{{- $errors = append $errors "valkey.sentinel.replicas: Sentinel needs at least 3 to agree on a failover" -}}
{{- end -}}
{{- if and .Values.restore.fromArchive (eq .Values.restore.fromArchive (.Values.backup.archiveName | default (printf "%s-pg" .Release.Name))) -}}
{{- $errors = append $errors "backup.archiveName: a restored cluster must archive under a new name, not the archive it restores from" -}}
{{- end -}}
{{- $req := include "messenger.requests" . | fromJson -}}
{{- $nodeCpu := mul (int $v.nodes.cpu) 1000 -}}
{{- $nodeMem := mul (int $v.nodes.memoryGiB) 1024 -}}
{{- $cpuHave := mul (int $v.nodes.count) (sub $nodeCpu (max 500 (div $nodeCpu 10))) -}}
{{- $memHave := mul (int $v.nodes.count) (sub $nodeMem (max 1024 (div (add $nodeMem 9) 10))) -}}
{{- if gt (int $req.cpu) $cpuHave -}}
{{- $errors = append $errors (printf "nodes: profile %s requests %dm CPU but %d nodes of %d cores give %dm after the system reserve" (toString $v.profile) (int $req.cpu) (int $v.nodes.count) (int $v.nodes.cpu) $cpuHave) -}}
{{- end -}}
{{- if gt (int $req.memory) $memHave -}}
{{- $errors = append $errors (printf "nodes: profile %s requests %dMi memory but %d nodes of %dGiB give %dMi after the system reserve" (toString $v.profile) (int $req.memory) (int $v.nodes.count) (int $v.nodes.memoryGiB) $memHave) -}}
{{- end -}}
{{- $_ := include "messenger.topology" . -}}
{{- if $errors -}}
{{- fail (printf "\n  - %s" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}
