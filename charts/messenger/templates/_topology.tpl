{{/*
The Synapse topology, derived from the ONE worker table (.Values.synapse.workers).

messenger.routes: every HTTP route class HAProxy knows, in matching order (first match wins),
with the path regexes (Synapse workers documentation) and how its backend balances.
messenger.topology: the pools that exist (replicas > 0, federation-only pools only with
federation), their instances and hosts, and the role assignments. instance_map,
stream_writers, *_instances, the HAProxy backends, Services and StatefulSets all read it.
*/}}

{{- define "messenger.routes" -}}
# Single-writer streams: the writer serves the stream's own endpoints.
- name: typing
  stream: typing
  paths:
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/typing
- name: to_device
  stream: to_device
  paths:
    - ^/_matrix/client/(r0|v3|unstable)/sendToDevice/
- name: account_data
  stream: account_data
  paths:
    - ^/_matrix/client/(r0|v3|unstable)/.*/tags
    - ^/_matrix/client/(r0|v3|unstable)/.*/account_data
- name: receipts
  stream: receipts
  paths:
    - ^/_matrix/client/(r0|v3|unstable)/rooms/[^/]+/receipt
    - ^/_matrix/client/(r0|v3|unstable)/rooms/[^/]+/read_markers
- name: presence
  stream: presence
  paths:
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/presence/
- name: push_rules
  stream: push_rules
  paths:
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/pushrules/
- name: device_lists
  stream: device_lists
  paths:
    - ^/_matrix/client/(r0|v3)/delete_devices$
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/devices(/|$)
    - ^/_matrix/client/(r0|v3|unstable)/keys/upload
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/keys/device_signing/upload$
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/keys/signatures/upload$
# Initial syncs (no `since`, or full_state=true) before incremental ones.
- name: initialSync
  balance: token
  paths:
    - ^/_matrix/client/(r0|v3)/sync$
    - ^/_matrix/client/(api/v1|r0|v3)/initialSync$
    - ^/_matrix/client/(api/v1|r0|v3)/rooms/[^/]+/initialSync$
  condition: "route_initialSync !has_since || route_initialSync full_state"
- name: sync
  balance: token
  paths:
    - ^/_matrix/client/(r0|v3)/sync$
    - ^/_matrix/client/(api/v1|r0|v3)/events$
    - ^/_matrix/client/(api/v1|r0|v3)/initialSync$
    - ^/_matrix/client/(api/v1|r0|v3)/rooms/[^/]+/initialSync$
    - ^/_matrix/client/unstable/org.matrix.simplified_msc3575/sync$
- name: eventSend
  balance: room
  paths:
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/redact
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/send
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/state/
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/(join|invite|leave|ban|unban|kick)$
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/join/
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/knock/
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/profile/
- name: media
  balance: leastconn
  paths:
    - ^/_matrix/media/
    - ^/_matrix/client/v1/media/
    - ^/_matrix/federation/v1/media/
    - ^/_synapse/admin/v1/purge_media_cache$
    - ^/_synapse/admin/v1/room/[^/]+/media
    - ^/_synapse/admin/v1/user/[^/]+/media
    - ^/_synapse/admin/v1/media/
    - ^/_synapse/admin/v1/quarantine_media/
    - ^/_synapse/admin/v1/users/[^/]+/media$
- name: clientRead
  balance: leastconn
  paths:
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/createRoom$
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/publicRooms$
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/joined_members$
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/context/
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/members$
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/state$
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/messages$
    - ^/_matrix/client/v1/rooms/[^/]+/hierarchy$
    - ^/_matrix/client/(v1|unstable)/rooms/[^/]+/relations/
    - ^/_matrix/client/v1/rooms/[^/]+/threads$
    - ^/_matrix/client/v1/rooms/[^/]+/timestamp_to_event$
    - ^/_matrix/client/unstable/im.nheko.summary/summary/
    - ^/_matrix/client/(r0|v3|unstable)/account/3pid$
    - ^/_matrix/client/(r0|v3|unstable)/account/whoami$
    - ^/_matrix/client/(r0|v3|unstable)/devices$
    - ^/_matrix/client/versions$
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/voip/turnServer$
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/event/
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/joined_rooms$
    - ^/_matrix/client/(api/v1|r0|v3|unstable/.*)/rooms/[^/]+/aliases
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/search$
    - ^/_matrix/client/(r0|v3|unstable)/user/[^/]+/filter(/|$)
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/directory/room/
    - ^/_matrix/client/(r0|v3|unstable)/capabilities$
    - ^/_matrix/client/(r0|v3|unstable)/notifications$
    - ^/_matrix/client/(r0|v3|unstable)/keys/query$
    - ^/_matrix/client/(r0|v3|unstable)/keys/changes$
    - ^/_matrix/client/(r0|v3|unstable)/keys/claim$
    - ^/_matrix/client/(r0|v3|unstable)/room_keys/
    - ^/_matrix/client/(r0|v3|unstable)/keys/upload$
    - ^/_matrix/client/(api/v1|r0|v3|unstable)/login$
    - ^/_matrix/client/(r0|v3|unstable)/register$
    - ^/_matrix/client/(r0|v3|unstable)/register/available$
    - ^/_matrix/client/v1/register/m.login.registration_token/validity$
    - ^/_matrix/client/(r0|v3|unstable)/password_policy$
    - ^/_matrix/client/(r0|v3|unstable)/user_directory/search$
# /send/ by origin server (HAProxy's txn.origin), the rest round robin (Synapse's workers doc).
- name: federation
  balance: origin
  federation: true
  paths:
    - ^/_matrix/federation/v1/event/
    - ^/_matrix/federation/v1/state/
    - ^/_matrix/federation/v1/state_ids/
    - ^/_matrix/federation/v1/backfill/
    - ^/_matrix/federation/v1/get_missing_events/
    - ^/_matrix/federation/v1/publicRooms
    - ^/_matrix/federation/v1/query/
    - ^/_matrix/federation/v1/make_join/
    - ^/_matrix/federation/v1/make_leave/
    - ^/_matrix/federation/(v1|v2)/send_join/
    - ^/_matrix/federation/(v1|v2)/send_leave/
    - ^/_matrix/federation/v1/make_knock/
    - ^/_matrix/federation/v1/send_knock/
    - ^/_matrix/federation/(v1|v2)/invite/
    - ^/_matrix/federation/v1/event_auth/
    - ^/_matrix/federation/v1/timestamp_to_event/
    - ^/_matrix/federation/v1/exchange_third_party_invite/
    - ^/_matrix/federation/v1/user/devices/
    - ^/_matrix/federation/v1/hierarchy/
    - ^/_matrix/federation/v1/send/
    - ^/_matrix/key/v2/query
{{- end -}}

{{- define "messenger.topology" -}}
{{- $root := . -}}
{{- $ns := .Release.Namespace -}}
{{- $routeStream := dict -}}
{{- range (include "messenger.routes" . | fromYamlArray) -}}
{{- if .stream }}{{ $_ := set $routeStream .stream .name }}{{ end -}}
{{- end -}}
{{- $mainSvc := printf "%s-synapse-main" .Release.Name -}}
{{- $main := dict "name" "main" "host" (printf "%s-0.%s.%s.svc.cluster.local" $mainSvc $mainSvc $ns) -}}
{{- $pools := list -}}
{{- $roles := dict -}}
{{- $streams := dict -}}
{{- $routes := dict -}}
{{- range $name, $p := .Values.synapse.workers -}}
{{- $replicas := int $p.replicas -}}
{{- if and $p.federationOnly (not $root.Values.federation.enabled) }}{{ $replicas = 0 }}{{ end -}}
{{- if gt $replicas 0 -}}
{{- $svc := printf "%s-synapse-%s" $root.Release.Name $name -}}
{{- $instances := list -}}
{{- range $i := until $replicas -}}
{{- $instances = append $instances (dict "name" (printf "%s-%d" $name $i) "host" (printf "%s-%d.%s.%s.svc.cluster.local" $svc $i $svc $ns)) -}}
{{- end -}}
{{- $poolRoutes := list -}}
{{- range $p.routes }}{{ $poolRoutes = append $poolRoutes . }}{{ end -}}
{{- range $p.streams -}}
{{- if hasKey $routeStream . }}{{ $poolRoutes = append $poolRoutes (index $routeStream .) }}{{ end -}}
{{- if hasKey $streams . -}}
{{- fail (printf "synapse.workers: stream %q is written by two pools (%s and %s)" . (index $streams .).pool $name) -}}
{{- end -}}
{{- $names := list -}}
{{- range $instances }}{{ $names = append $names .name }}{{ end -}}
{{- $_ := set $streams . (dict "pool" $name "instances" $names) -}}
{{- end -}}
{{- range $poolRoutes -}}
{{- if hasKey $routes . -}}
{{- fail (printf "synapse.workers: route %q is served by two pools (%s and %s)" . (index $routes .) $name) -}}
{{- end -}}
{{- $_ := set $routes . $name -}}
{{- end -}}
{{- range $p.roles -}}
{{- if hasKey $roles . -}}
{{- fail (printf "synapse.workers: role %q is given to two pools (%s and %s)" . (index $roles .).pool $name) -}}
{{- end -}}
{{- $names := list -}}
{{- range $instances }}{{ $names = append $names .name }}{{ end -}}
{{- $_ := set $roles . (dict "pool" $name "instances" $names) -}}
{{- end -}}
{{- $pools = append $pools (dict "name" $name "app" $p.app "replicas" $replicas "service" $svc "routes" $poolRoutes "streams" ($p.streams | default list) "roles" ($p.roles | default list) "instances" $instances "db" $p.db "cacheFactor" $p.cacheFactor "resources" $p.resources) -}}
{{- end -}}
{{- end -}}
{{- range $stream, $w := $streams -}}
{{- if and (ne $stream "events") (gt (len $w.instances) 1) -}}
{{- fail (printf "synapse.workers.%s: the %s stream takes exactly one writer, not %d replicas" $w.pool $stream (len $w.instances)) -}}
{{- end -}}
{{- end -}}
{{- range $role := list "background" "mediaBackground" "userDirectory" "appserviceNotifier" -}}
{{- if and (hasKey $roles $role) (gt (len (index $roles $role).instances) 1) -}}
{{- fail (printf "synapse.workers.%s: role %s runs on exactly one instance, not %d replicas" (index $roles $role).pool $role (len (index $roles $role).instances)) -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "main" $main "pools" $pools "roles" $roles "streams" $streams "routes" $routes) -}}
{{- end -}}

{{/* instance_map and friends, as Synapse shared config. */}}
{{- define "messenger.synapseTopologyConfig" -}}
{{- $t := include "messenger.topology" . | fromYaml -}}
{{- $map := dict "main" (dict "host" $t.main.host "port" 9093 "tls" false) -}}
{{- range $t.pools }}{{ range .instances }}{{ $_ := set $map .name (dict "host" .host "port" 9093 "tls" false) }}{{ end }}{{ end -}}
{{- $writers := dict -}}
{{- range $stream, $w := $t.streams -}}
{{- if eq $stream "events" }}{{ $_ := set $writers $stream $w.instances }}{{ else }}{{ $_ := set $writers $stream (first $w.instances) }}{{ end -}}
{{- end -}}
{{- $cfg := dict "instance_map" $map "stream_writers" $writers -}}
{{- if hasKey $t.roles "federationSender" }}{{ $_ := set $cfg "federation_sender_instances" (index $t.roles "federationSender").instances }}{{ end -}}
{{- if hasKey $t.roles "pusher" }}{{ $_ := set $cfg "pusher_instances" (index $t.roles "pusher").instances }}{{ end -}}
{{- if hasKey $t.roles "background" }}{{ $_ := set $cfg "run_background_tasks_on" (first (index $t.roles "background").instances) }}{{ end -}}
{{- if hasKey $t.roles "userDirectory" }}{{ $_ := set $cfg "update_user_directory_from_worker" (first (index $t.roles "userDirectory").instances) }}{{ end -}}
{{- if hasKey $t.roles "appserviceNotifier" }}{{ $_ := set $cfg "notify_appservices_from_worker" (first (index $t.roles "appserviceNotifier").instances) }}{{ end -}}
{{- if hasKey $t.routes "media" -}}
{{- $_ := set $cfg "enable_media_repo" false -}}
{{- /* The media admin API (quarantine by id, room or user) is routed to the media instance,
and quarantining writes the quarantined_media_changes stream, which only its writers may
(synapse/storage/databases/main/room.py, _insert_quarantine_changes_txn; default: main, and
the media instance then answered 500, found by the antivirus rescan test). */ -}}
{{- $mediaPool := index $t.routes "media" -}}
{{- range $t.pools }}{{ if eq .name $mediaPool }}{{ $_ := set $writers "quarantined_media_changes" (first .instances).name }}{{ end }}{{ end -}}
{{- if hasKey $t.roles "mediaBackground" }}{{ $_ := set $cfg "media_instance_running_background_jobs" (first (index $t.roles "mediaBackground").instances) }}{{ end -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
