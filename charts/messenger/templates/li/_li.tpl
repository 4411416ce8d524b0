{{/*
Partials of the lawful-intercept instance's deployment (templates/li; docs/li.md): its host
names, the pod selectors its NetworkPolicies name, and what its namespace's pods request.
Everything LI renders only with li.enabled.
*/}}

{{/* An LI host name under the site domain: (dict "root" $ "host" "synapse") */}}
{{- define "messenger.liHost" -}}
{{- printf "%s.%s" (index .root.Values.li.hosts .host) .root.Values.domain -}}
{{- end -}}

{{/* The LI pods' selectors, by part, as JSON: synapse, element, admin, keyVault, mediaSync,
postgres (CloudNativePG labels every instance and job pod of <release>-li-postgres with
cnpg.io/cluster). */}}
{{- define "messenger.liSelectors" -}}
{{- $r := .Release.Name -}}
{{- toJson (dict
  "synapse" (dict "app.kubernetes.io/name" "li-synapse" "app.kubernetes.io/instance" $r)
  "element" (dict "app.kubernetes.io/name" "li-element" "app.kubernetes.io/instance" $r)
  "admin" (dict "app.kubernetes.io/name" "li-synapse-admin" "app.kubernetes.io/instance" $r)
  "keyVault" (dict "app.kubernetes.io/name" "li-key-vault" "app.kubernetes.io/instance" $r)
  "mediaSync" (dict "app.kubernetes.io/name" "li-media-sync" "app.kubernetes.io/instance" $r)
  "postgres" (dict "cnpg.io/cluster" (printf "%s-li-postgres" $r))
) -}}
{{- end -}}

{{/* The Envoy proxies of the release's Gateway: with gateway.envoy.manage, the labels Envoy
Gateway v1.9 puts on the proxy pods it runs for a Gateway
(gateway.envoyproxy.io/owning-gateway-name and -namespace, the stable selector of
internal/infrastructure/kubernetes/proxy/resource_provider.go, read at upstream's main branch,
not checked against the v1.9 tag); otherwise any pod of gateway.namespace. As a NetworkPolicy peer (JSON). */}}
{{- define "messenger.liGatewayPeer" -}}
{{- $peer := dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" .Values.gateway.namespace)) -}}
{{- if .Values.gateway.envoy.manage -}}
{{- $_ := set $peer "podSelector" (dict "matchLabels" (dict "gateway.envoyproxy.io/owning-gateway-name" .Release.Name "gateway.envoyproxy.io/owning-gateway-namespace" .Release.Namespace)) -}}
{{- end -}}
{{- toJson $peer -}}
{{- end -}}

{{/* What li.namespace's pods ask in total, for its ResourceQuota: {"cpu": millicores,
"memory": MiB (requests), "limitsMemory": MiB}: synapse-li, element-web-li, synapse-admin-li,
key_vault and its audit proxy, the LI PostgreSQL instances and the media sync job. */}}
{{- define "messenger.liNamespaceTotals" -}}
{{- $li := .Values.li -}}
{{- $items := list (list 1 $li.synapse.resources) -}}
{{- $items = append $items (list $li.element.replicas $li.element.resources) -}}
{{- $items = append $items (list $li.synapseAdmin.replicas $li.synapseAdmin.resources) -}}
{{- if $li.keyVault.enabled }}{{ $items = append $items (list 1 $li.keyVault.resources) }}{{ $items = append $items (list 1 (dict "requests" (dict "cpu" "10m" "memory" "32Mi") "limits" (dict "memory" "64Mi"))) }}{{ end -}}
{{- $items = append $items (list $li.postgres.instances $li.postgres.resources) -}}
{{- $items = append $items (list 1 $li.mediaSync.resources) -}}
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

{{/* The S3 port of the object store the media sync reads (Garage's 3900, or the external
endpoint's). */}}
{{- define "messenger.liS3Port" -}}
{{- if eq .Values.objectStorage.mode "external" -}}
{{- $u := urlParse .Values.objectStorage.external.endpoint -}}
{{- $hp := splitList ":" $u.host -}}
{{- ternary (last $hp | int) (ternary 443 80 (eq $u.scheme "https")) (gt (len $hp) 1) -}}
{{- else -}}
3900
{{- end -}}
{{- end -}}
