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
{{- /* coturn (templates/coturn): its own namespace, the node-to-external address map, the
peer rules' networks, relay ports against the profile's allocations. */ -}}
{{- if $v.turn.enabled -}}
{{- if eq (include "messenger.turnNamespace" .) .Release.Namespace -}}
{{- $errors = append $errors (printf "turn.namespace: coturn needs the privileged Pod Security level (host network); it must run in its own namespace, not the release namespace %s" .Release.Namespace) -}}
{{- end -}}
{{- if and $v.turn.nodeIPs (ne (len $v.turn.nodeIPs) (len $v.turn.externalIPs)) -}}
{{- $errors = append $errors (printf "turn.nodeIPs: %d node addresses for %d turn.externalIPs: give each TURN node's own address in the order of its external address (or none when the nodes hold their external addresses)" (len $v.turn.nodeIPs) (len $v.turn.externalIPs)) -}}
{{- end -}}
{{- range $f := list "podCIDRs" "serviceCIDRs" "nodeCIDRs" -}}
{{- if not (index $v.cluster $f) -}}
{{- $errors = append $errors (printf "cluster.%s: required when TURN is on (coturn's relays must never reach the cluster's own networks)" $f) -}}
{{- end -}}
{{- end -}}
{{- $cluster := include "messenger.clusterRanges" . | fromJsonArray -}}
{{- range $client := $v.turn.clientCIDRs -}}
{{- $r := include "messenger.cidrRange" $client | fromJson -}}
{{- range $cluster -}}
{{- if include "messenger.rangesOverlap" (list $r .) -}}
{{- $errors = append $errors (printf "turn.clientCIDRs: %s overlaps %s %s: relays would reach into the cluster" $client .what .cidr) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $ports := include "messenger.turnRelayPorts" . | int -}}
{{- if and (ge (int $v.turn.relayPortMax) (int $v.turn.relayPortMin)) (lt $ports (int $v.coturn.allocations)) -}}
{{- $errors = append $errors (printf "turn.relayPortMin/relayPortMax: %d relay ports per TURN node (%d-%d) but profile %s plans %d concurrent allocations per node (coturn.allocations, one port each): widen the range to at least %d ports" $ports (int $v.turn.relayPortMin) (int $v.turn.relayPortMax) (toString $v.profile) (int $v.coturn.allocations) (int $v.coturn.allocations)) -}}
{{- end -}}
{{- if gt (int $v.coturn.userQuota) (int $v.coturn.allocations) -}}
{{- $errors = append $errors (printf "coturn.userQuota: %d allocations per credential exceed the %d of the whole server (coturn.allocations)" (int $v.coturn.userQuota) (int $v.coturn.allocations)) -}}
{{- end -}}
{{- end -}}
{{- /* Media (templates/synapse, templates/media): one ReadWriteOnce volume, so one media
instance; growth only on a StorageClass that expands volumes. */ -}}
{{- range $name, $pool := $v.synapse.workers -}}
{{- if and (has "media" $pool.routes) (gt (int $pool.replicas) 1) -}}
{{- $errors = append $errors (printf "synapse.workers.%s.replicas: %d media instances, but the media store is one ReadWriteOnce volume that one instance mounts (docs/capacity.md#media)" $name (int $pool.replicas)) -}}
{{- end -}}
{{- end -}}
{{- $mediaGiB := include "messenger.gib" $v.storage.media | int -}}
{{- $mediaMaxGiB := include "messenger.gib" ($v.storage.mediaMax | default $v.storage.media) | int -}}
{{- if lt $mediaMaxGiB $mediaGiB -}}
{{- $errors = append $errors (printf "storage.mediaMax: %s is below storage.media %s" $v.storage.mediaMax $v.storage.media) -}}
{{- else if and (not $v.storage.expandable) (gt $mediaMaxGiB $mediaGiB) -}}
{{- $errors = append $errors (printf "storage.mediaMax: the site plans to grow the media volume from %s to %s, but storage.expandable is false (StorageClass %s cannot expand volumes): create it at its final size (storage.media: %s) or use a StorageClass with allowVolumeExpansion" $v.storage.media $v.storage.mediaMax $v.storageClass $v.storage.mediaMax) -}}
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
{{- /* Edge and egress (templates/haproxy, templates/edge, templates/platform): the admin
host's source networks, HAProxy's memory and threads from maxconn (docs/capacity.md#haproxy,
the capacity crate's HAPROXY_* constants), and egress ranges that must be given and never be
every address unless the site says so. */ -}}
{{- if $v.features.adminApi -}}
{{- if not $v.admin.allowedCIDRs -}}
{{- $errors = append $errors "admin.allowedCIDRs: the admin API is on (features.adminApi) but no network may reach the admin host: list the networks the administrators and the installer's smoke test connect from, or set features.adminApi: false" -}}
{{- end -}}
{{- range $v.admin.allowedCIDRs -}}
{{- if eq (last (splitList "/" .)) "0" -}}
{{- $errors = append $errors (printf "admin.allowedCIDRs: %s admits every address: list the administrators' networks" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $hapNeedKiB := add 65536 (mul (int $v.haproxy.maxconn) 49) -}}
{{- $hapLimitMiB := include "messenger.mib" $v.haproxy.resources.limits.memory | int -}}
{{- if gt $hapNeedKiB (mul $hapLimitMiB 1024) -}}
{{- $errors = append $errors (printf "haproxy.resources.limits.memory: %s but maxconn %d needs %dMi: 64Mi for the process plus 49Ki per connection (three tune.bufsize buffers of 16Ki and 1Ki of state; docs/capacity.md#haproxy)" (toString $v.haproxy.resources.limits.memory) (int $v.haproxy.maxconn) (div (add $hapNeedKiB 1023) 1024)) -}}
{{- end -}}
{{- $hapThreads := div (add (int $v.haproxy.maxconn) 9999) 10000 -}}
{{- if lt (int $v.haproxy.nbthread) $hapThreads -}}
{{- $errors = append $errors (printf "haproxy.nbthread: %d for maxconn %d: at least %d (one thread per 10000 connections)" (int $v.haproxy.nbthread) (int $v.haproxy.maxconn) $hapThreads) -}}
{{- end -}}
{{- $egress := dict "networkPolicy.apiServerCIDR" (list $v.networkPolicy.apiServerCIDR "the Kubernetes API servers' addresses as pods reach them (the endpoints of Service default/kubernetes), which CloudNativePG's instances and poolers call") -}}
{{- if eq $v.objectStorage.mode "external" -}}
{{- $_ := set $egress "objectStorage.external.cidr" (list $v.objectStorage.external.cidr "where the S3 endpoint's addresses are, for PostgreSQL's backups and the bucket Job (required when objectStorage.mode is external)") -}}
{{- end -}}
{{- range $field, $e := $egress -}}
{{- $cidr := index $e 0 -}}
{{- if not $cidr -}}
{{- $errors = append $errors (printf "%s: required: %s" $field (index $e 1)) -}}
{{- else if and (eq (last (splitList "/" $cidr)) "0") (not $v.networkPolicy.allowEgressToAnyAddress) -}}
{{- $errors = append $errors (printf "%s: %s lets these pods reach every address: give %s, or set networkPolicy.allowEgressToAnyAddress: true" $field $cidr (index $e 1)) -}}
{{- end -}}
{{- end -}}
{{- if gt (int $v.garage.replicationFactor) (int $v.garage.replicas) -}}
{{- $errors = append $errors (printf "garage.replicationFactor: %d copies need at least %d Garage nodes" (int $v.garage.replicationFactor) (int $v.garage.replicationFactor)) -}}
{{- end -}}
{{- /* Valkey (templates/valkey): the memory limit holds maxmemory plus 30% (allocator
fragmentation 20%, replica output buffers 10%) plus 64Mi for the process; docs/capacity.md#valkey. */ -}}
{{- $vkMax := include "messenger.valkeyMaxmemoryMiB" . | int -}}
{{- $vkNeed := add (div (add (mul $vkMax 13) 9) 10) 64 -}}
{{- $vkLimit := include "messenger.mib" $v.valkey.resources.limits.memory | int -}}
{{- if lt $vkLimit $vkNeed -}}
{{- $errors = append $errors (printf "valkey.resources.limits.memory: %s cannot hold maxmemory %s: at least %dMi (maxmemory x 1.3 for fragmentation and replica output buffers, plus 64Mi for the process; docs/capacity.md#valkey)" (toString $v.valkey.resources.limits.memory) (toString $v.valkey.maxmemory) $vkNeed) -}}
{{- end -}}
{{- /* PostgreSQL (templates/postgres): Guaranteed QoS, and work_mem x max_connections within
a quarter of the memory limit (shared_buffers takes another quarter); docs/capacity.md#postgresql. */ -}}
{{- $pgr := $v.postgres.resources -}}
{{- if or (not $pgr.limits.cpu) (ne (include "messenger.millicores" $pgr.requests.cpu) (include "messenger.millicores" ($pgr.limits.cpu | default "0"))) (ne (include "messenger.mib" $pgr.requests.memory) (include "messenger.mib" $pgr.limits.memory)) -}}
{{- $errors = append $errors (printf "postgres.resources: requests (cpu %v, memory %s) must equal limits (cpu %v, memory %s) so the database pods get Guaranteed QoS and are the last to be evicted" $pgr.requests.cpu (toString $pgr.requests.memory) ($pgr.limits.cpu | default "none") (toString $pgr.limits.memory)) -}}
{{- end -}}
{{- $sc := $v.postgres.sidecarResources -}}
{{- if or (not $sc.limits.cpu) (ne (include "messenger.millicores" $sc.requests.cpu) (include "messenger.millicores" ($sc.limits.cpu | default "0"))) (ne (include "messenger.mib" $sc.requests.memory) (include "messenger.mib" $sc.limits.memory)) -}}
{{- $errors = append $errors "postgres.sidecarResources: requests must equal limits (cpu and memory): the barman-cloud sidecar shares the database pods, which need Guaranteed QoS" -}}
{{- end -}}
{{- $pgLimitKiB := mul (include "messenger.mib" $pgr.limits.memory | int) 1024 -}}
{{- $pgWorkKiB := include "messenger.pgKiB" $v.postgres.workMem | int -}}
{{- if gt (mul $pgWorkKiB (int $v.postgres.maxConnections)) (div $pgLimitKiB 4) -}}
{{- $errors = append $errors (printf "postgres.workMem: %s x max_connections %d = %dMB exceeds a quarter of the memory limit %s (%dMB): at most %dkB, or fewer connections or a larger limit (docs/capacity.md#postgresql)" (toString $v.postgres.workMem) (int $v.postgres.maxConnections) (div (mul $pgWorkKiB (int $v.postgres.maxConnections)) 1024) (toString $pgr.limits.memory) (div $pgLimitKiB 4096) (div (div $pgLimitKiB 4) (int $v.postgres.maxConnections))) -}}
{{- end -}}
{{- if lt (int $v.valkey.sentinel.replicas) 3 -}}
{{- $errors = append $errors "valkey.sentinel.replicas: Sentinel needs at least 3 to agree on a failover" -}}
{{- end -}}
{{- if and .Values.restore.fromArchive (eq .Values.restore.fromArchive (.Values.backup.archiveName | default (printf "%s-pg" .Release.Name))) -}}
{{- $errors = append $errors "backup.archiveName: a restored cluster must archive under a new name, not the archive it restores from" -}}
{{- end -}}
{{- /* Group calls (templates/calls): coturn is their only STUN/TURN, one LiveKit per call node
with its own external address, ports the chosen network can carry. */ -}}
{{- $calls := $v.calls -}}
{{- if $calls.enabled -}}
{{- if not $v.turn.enabled -}}
{{- $errors = append $errors "calls.enabled: group calls need turn.enabled: coturn is the calls' only STUN/TURN server (without it LiveKit would hand clients public STUN servers)" -}}
{{- end -}}
{{- if not $calls.externalIPs -}}
{{- $errors = append $errors "calls.externalIPs: calls are enabled but no address clients can reach a call node at is given" -}}
{{- end -}}
{{- if not $calls.nodeSelector -}}
{{- $errors = append $errors "calls.nodeSelector: calls are enabled but no node label selects the call nodes" -}}
{{- end -}}
{{- if and $calls.nodeIPs (ne (len $calls.nodeIPs) (len $calls.externalIPs)) -}}
{{- $errors = append $errors (printf "calls.nodeIPs: %d node addresses for %d calls.externalIPs: give each call node's own address in the order of its external address (or none when the nodes hold their external addresses)" (len $calls.nodeIPs) (len $calls.externalIPs)) -}}
{{- end -}}
{{- if gt (int $v.livekit.replicas) (len $calls.externalIPs) -}}
{{- $errors = append $errors (printf "livekit.replicas: profile %s runs %d LiveKit pods, one per call node, but calls.externalIPs gives %d call node addresses" (toString $v.profile) (int $v.livekit.replicas) (len $calls.externalIPs)) -}}
{{- end -}}
{{- $rangeOn := or (gt (int $calls.udpPortRangeStart) 0) (gt (int $calls.udpPortRangeEnd) 0) -}}
{{- if eq $calls.network "nodePort" -}}
{{- if $rangeOn -}}
{{- $errors = append $errors "calls.udpPortRangeStart: a UDP port range needs calls.network: hostNetwork (a NodePort Service cannot carry thousands of ports); with nodePort LiveKit muxes every call on calls.udpPort" -}}
{{- end -}}
{{- range $f := list "udpPort" "tcpPort" -}}
{{- $p := int (index $calls $f) -}}
{{- if or (lt $p 30000) (gt $p 32767) -}}
{{- $errors = append $errors (printf "calls.%s: %d is outside the NodePort range 30000-32767 (calls.network: nodePort exposes it as the same node port, which LiveKit advertises)" $f $p) -}}
{{- end -}}
{{- end -}}
{{- else -}}
{{- if $rangeOn -}}
{{- if or (lt (int $calls.udpPortRangeStart) 1024) (le (int $calls.udpPortRangeEnd) (int $calls.udpPortRangeStart)) -}}
{{- $errors = append $errors (printf "calls.udpPortRangeStart/udpPortRangeEnd: %d-%d is not a range of unprivileged ports (start at least 1024, end above start)" (int $calls.udpPortRangeStart) (int $calls.udpPortRangeEnd)) -}}
{{- end -}}
{{- end -}}
{{- /* On the host network LiveKit shares a node with coturn when the labels overlap: its UDP
ports must stay out of coturn's listening port and relay range. */ -}}
{{- $lo := ternary (int $calls.udpPortRangeStart) (int $calls.udpPort) $rangeOn -}}
{{- $hi := ternary (int $calls.udpPortRangeEnd) (int $calls.udpPort) $rangeOn -}}
{{- if and $v.turn.enabled (le $lo (int $v.turn.relayPortMax)) (ge $hi (int $v.turn.relayPortMin)) -}}
{{- $errors = append $errors (printf "calls: LiveKit's UDP ports %d-%d overlap coturn's relay range %d-%d on the host network" $lo $hi (int $v.turn.relayPortMin) (int $v.turn.relayPortMax)) -}}
{{- end -}}
{{- if and $v.turn.enabled (le $lo (int $v.turn.port)) (ge $hi (int $v.turn.port)) -}}
{{- $errors = append $errors (printf "calls: LiveKit's UDP ports %d-%d include coturn's port %d on the host network" $lo $hi (int $v.turn.port)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* antivirus: clamd holds the full signature set (about 1.2 GiB loaded); below 2Gi it is
killed while loading (docs/antivirus.md). */ -}}
{{- if $v.antivirus.enabled -}}
{{- $clamdLimit := $v.antivirus.clamd.resources.limits.memory | default "0Mi" -}}
{{- if lt (include "messenger.mib" $clamdLimit | int) 2048 -}}
{{- $errors = append $errors (printf "antivirus.clamd.resources.limits.memory %s is below 2Gi, less than clamd needs for the full signature set" $clamdLimit) -}}
{{- end -}}
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
{{- /* --- monitoring releases: the Alertmanager receiver the installer configures --- */ -}}
{{- with $v.monitoring.alerts -}}
{{- if eq .receiver "email" -}}
{{- range $k := list "to" "from" "smarthost" -}}
{{- if not (index ($.Values.monitoring.alerts.email | default dict) $k) -}}
{{- $errors = append $errors (printf "monitoring.alerts.email.%s: required with receiver email" $k) -}}
{{- end -}}
{{- end -}}
{{- else if eq .receiver "webhook" -}}
{{- if not (.webhook | default dict).url -}}
{{- $errors = append $errors "monitoring.alerts.webhook.url: required with receiver webhook" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* --- end monitoring releases --- */ -}}
{{- /* --- coturn's metrics (docs/monitoring.md): a TCP port of the node, beside coturn's own
listeners and, when calls share the host network, LiveKit's. --- */ -}}
{{- if and $v.turn.enabled $v.monitoring.enabled $v.coturn.metrics.enabled -}}
{{- $taken := list (int $v.turn.port) (int $v.turn.tlsPort) -}}
{{- if and $v.calls.enabled (eq $v.calls.network "hostNetwork") -}}
{{- $taken = concat $taken (list 7880 6789 (int $v.calls.tcpPort)) -}}
{{- end -}}
{{- if has (int $v.coturn.metrics.port) $taken -}}
{{- $errors = append $errors (printf "coturn.metrics.port: %d is already a TCP port of coturn or LiveKit on the node (%s)" (int $v.coturn.metrics.port) (join ", " $taken)) -}}
{{- end -}}
{{- end -}}
{{- /* --- end coturn's metrics --- */ -}}
{{- /* --- lawful intercept (templates/li; docs/li.md) --- */ -}}
{{- if $v.li.enabled -}}
{{- $li := $v.li -}}
{{- if has $li.namespace (list .Release.Namespace $v.turn.namespace (printf "%s-turn" .Release.Namespace) $v.gateway.namespace $v.networkPolicy.cnpgNamespace $v.networkPolicy.monitoringNamespace "default" "kube-system") -}}
{{- $errors = append $errors (printf "li.namespace: %s is shared with other parts of the stack or the cluster; the LI instance needs a namespace of its own" $li.namespace) -}}
{{- end -}}
{{- if eq (int $li.keyVault.port) 8080 -}}
{{- $errors = append $errors "li.keyVault.port: 8080 is key_vault's audit proxy's port in the same pod; give key_vault another" -}}
{{- end -}}
{{- if and $li.keyVault.enabled (not $li.keyVault.image) -}}
{{- $errors = append $errors "li.keyVault.image: required while li.keyVault.enabled (the site's key_vault image, also listed in images.toml; no public image exists), or set li.keyVault.enabled false" -}}
{{- end -}}
{{- if not $v.backup.media.enabled -}}
{{- $errors = append $errors "backup.media.enabled: the LI media sync copies the main media backup (media/<release>/current in the bucket): it must be on while li.enabled" -}}
{{- end -}}
{{- if and (eq $v.objectStorage.mode "external") (not $li.mediaSync.credentialsSecret) -}}
{{- $errors = append $errors "li.mediaSync.credentialsSecret: required with objectStorage.mode external (a Secret in li.namespace holding a key that can only read the bucket)" -}}
{{- end -}}
{{- range $li.allowedSourceRanges -}}
{{- if hasSuffix "/0" . -}}
{{- $errors = append $errors (printf "li.allowedSourceRanges: %s admits every address; leave the list empty for no restriction at the Gateway" .) -}}
{{- end -}}
{{- end -}}
{{- if and $li.allowedSourceRanges (not $v.gateway.envoy.manage) -}}
{{- $errors = append $errors "li.allowedSourceRanges: enforced by an Envoy Gateway SecurityPolicy on the LI routes, which needs gateway.envoy.manage; with the site's own Gateway implementation restrict the sources there and leave the list empty" -}}
{{- end -}}
{{- $mainHosts := list $v.hosts.matrix $v.hosts.element $v.hosts.admin $v.hosts.turn $v.hosts.rtc -}}
{{- range $k, $h := $li.hosts -}}
{{- if has $h $mainHosts -}}
{{- $errors = append $errors (printf "li.hosts.%s: %s is a host of the main instance; LI needs host names of its own" $k $h) -}}
{{- end -}}
{{- end -}}
{{- if ne (len (values $li.hosts | uniq)) (len (values $li.hosts)) -}}
{{- $errors = append $errors "li.hosts: each LI host needs its own name" -}}
{{- end -}}
{{- $pg := $li.postgres.resources -}}
{{- if or (ne (toString $pg.requests.cpu) (toString ($pg.limits.cpu | default ""))) (ne (toString $pg.requests.memory) (toString $pg.limits.memory)) -}}
{{- $errors = append $errors "li.postgres.resources: requests must equal limits, CPU and memory (Guaranteed QoS, as for the main cluster)" -}}
{{- end -}}
{{- end -}}
{{- /* --- end lawful intercept --- */ -}}
{{- $_ := include "messenger.topology" . -}}
{{- if $errors -}}
{{- fail (printf "\n  - %s" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}
