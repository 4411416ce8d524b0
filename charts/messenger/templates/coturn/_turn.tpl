{{/*
coturn's partials: its namespace, IPv4 range arithmetic for the relay's peer rules (coturn
takes `ip` or `ip-ip`, not CIDRs), and the allowed/denied peer ranges.
*/}}

{{/* The namespace coturn runs in: turn.namespace, or <release namespace>-turn. */}}
{{- define "messenger.turnNamespace" -}}
{{- .Values.turn.namespace | default (printf "%s-turn" .Release.Namespace) -}}
{{- end -}}

{{/* An IPv4 address ("10.1.2.3") as an integer. */}}
{{- define "messenger.ipv4ToInt" -}}
{{- $o := splitList "." . -}}
{{- add (mul (index $o 0 | int64) 16777216) (mul (index $o 1 | int64) 65536) (mul (index $o 2 | int64) 256) (index $o 3 | int64) -}}
{{- end -}}

{{/* An integer as an IPv4 address. */}}
{{- define "messenger.intToIpv4" -}}
{{- $n := int64 . -}}
{{- printf "%d.%d.%d.%d" (div $n 16777216) (mod (div $n 65536) 256) (mod (div $n 256) 256) (mod $n 256) -}}
{{- end -}}

{{/* An IPv4 CIDR ("10.96.0.0/12") or address as JSON {"cidr", "first", "last", "range"}:
first and last as integers, range as coturn writes it ("10.96.0.0-10.111.255.255"). */}}
{{- define "messenger.cidrRange" -}}
{{- $parts := splitList "/" . -}}
{{- $ip := include "messenger.ipv4ToInt" (first $parts) | int64 -}}
{{- $bits := 32 -}}
{{- if eq (len $parts) 2 }}{{ $bits = index $parts 1 | int }}{{ end -}}
{{- $size := 1 -}}
{{- range until (sub 32 $bits | int) }}{{ $size = mul $size 2 }}{{ end -}}
{{- $start := sub $ip (mod $ip $size) -}}
{{- $end := add $start (sub $size 1) -}}
{{- toJson (dict "cidr" . "first" $start "last" $end "range" (ternary (include "messenger.intToIpv4" $start) (printf "%s-%s" (include "messenger.intToIpv4" $start) (include "messenger.intToIpv4" $end)) (eq $start $end))) -}}
{{- end -}}

{{/* The cluster's own networks (pods, services, nodes) as a JSON list of cidrRange objects,
each with "what": the site field it comes from. */}}
{{- define "messenger.clusterRanges" -}}
{{- $out := list -}}
{{- range $field := list "podCIDRs" "serviceCIDRs" "nodeCIDRs" -}}
{{- range (index $.Values.cluster $field) -}}
{{- $out = append $out (merge (include "messenger.cidrRange" . | fromJson) (dict "what" (printf "cluster.%s" $field))) -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Whether two cidrRange objects (JSON-decoded) overlap: "true" or "". */}}
{{- define "messenger.rangesOverlap" -}}
{{- $a := index . 0 -}}{{- $b := index . 1 -}}
{{- if and (le (int64 $a.first) (int64 $b.last)) (le (int64 $b.first) (int64 $a.last)) }}true{{ end -}}
{{- end -}}

{{/*
The peers a relay may never reach, as coturn ranges with a reason each (JSON list of
{"range", "why"}). The cluster's own networks first (site fields), then the special-purpose
IPv4 blocks (RFC 6890): loopback, link-local (cloud metadata), private, shared address space,
documentation, benchmarking, multicast, reserved; then the IPv6 forms of the same (loopback,
IPv4-mapped, NAT64, unique-local, link-local). allowed-peer-ip takes precedence over these in
coturn, so it names only what calls need and never a cluster network (the chart checks).
*/}}
{{- define "messenger.turnDeniedPeers" -}}
{{- $out := list -}}
{{- range (include "messenger.clusterRanges" . | fromJsonArray) -}}
{{- $out = append $out (dict "range" .range "why" (printf "%s %s" .what .cidr)) -}}
{{- end -}}
{{- $special := list
  (list "0.0.0.0/8" "this network")
  (list "10.0.0.0/8" "private")
  (list "100.64.0.0/10" "shared address space (CGNAT)")
  (list "127.0.0.0/8" "loopback")
  (list "169.254.0.0/16" "link-local, cloud metadata")
  (list "172.16.0.0/12" "private")
  (list "192.0.0.0/24" "IETF protocol assignments")
  (list "192.0.2.0/24" "documentation")
  (list "192.88.99.0/24" "6to4 relay anycast")
  (list "192.168.0.0/16" "private")
  (list "198.18.0.0/15" "benchmarking")
  (list "198.51.100.0/24" "documentation")
  (list "203.0.113.0/24" "documentation")
  (list "224.0.0.0/4" "multicast")
  (list "240.0.0.0/4" "reserved, broadcast")
-}}
{{- range $special -}}
{{- $out = append $out (dict "range" (include "messenger.cidrRange" (index . 0) | fromJson).range "why" (printf "%s %s" (index . 0) (index . 1))) -}}
{{- end -}}
{{- $v6 := list
  (list "::1" "IPv6 loopback")
  (list "::ffff:0.0.0.0-::ffff:255.255.255.255" "IPv4-mapped IPv6")
  (list "64:ff9b::-64:ff9b::ffff:ffff" "NAT64")
  (list "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" "IPv6 unique-local")
  (list "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff" "IPv6 link-local")
-}}
{{- range $v6 }}{{ $out = append $out (dict "range" (index . 0) "why" (index . 1)) }}{{ end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
The peers a relay may reach although a denied range covers them (JSON list of {"range",
"why"}): the networks of the users' devices (turn.clientCIDRs), and the TURN nodes' external
addresses that lie outside the cluster's networks (a relayed party talking to another
relayed party: the peer is the other relay's external address, behind NAT), and with group
calls the call nodes' external addresses outside them (a relayed participant's peer is
LiveKit). An external address inside a cluster network is the node's own address: allowing it would open the
node's UDP services (the overlay's VXLAN/Geneve port, ...) to relayed clients, so it stays
denied and two relayed parties meet through a client address instead.
*/}}
{{- define "messenger.turnAllowedPeers" -}}
{{- $cluster := include "messenger.clusterRanges" . | fromJsonArray -}}
{{- $out := list -}}
{{- range .Values.turn.clientCIDRs -}}
{{- $out = append $out (dict "range" (include "messenger.cidrRange" . | fromJson).range "why" (printf "turn.clientCIDRs %s" .)) -}}
{{- end -}}
{{- range $ip := .Values.turn.externalIPs -}}
{{- $r := include "messenger.cidrRange" $ip | fromJson -}}
{{- $inside := false -}}
{{- range $cluster }}{{ if include "messenger.rangesOverlap" (list $r .) }}{{ $inside = true }}{{ end }}{{ end -}}
{{- if not $inside -}}
{{- $out = append $out (dict "range" $ip "why" (printf "turn.externalIPs %s (relay to relay)" $ip)) -}}
{{- end -}}
{{- end -}}
{{- /* Group calls: a relayed participant's peer is LiveKit on its call node's external
address, allowed on the same terms (outside the cluster's networks). */ -}}
{{- if .Values.calls.enabled -}}
{{- range $ip := .Values.calls.externalIPs -}}
{{- $r := include "messenger.cidrRange" $ip | fromJson -}}
{{- $inside := false -}}
{{- range $cluster }}{{ if include "messenger.rangesOverlap" (list $r .) }}{{ $inside = true }}{{ end }}{{ end -}}
{{- if and (not $inside) (not (has $ip $.Values.turn.externalIPs)) -}}
{{- $out = append $out (dict "range" $ip "why" (printf "calls.externalIPs %s (relay to LiveKit)" $ip)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Relay ports per TURN node: turn.relayPortMax − turn.relayPortMin + 1. */}}
{{- define "messenger.turnRelayPorts" -}}
{{- add (sub (int .Values.turn.relayPortMax) (int .Values.turn.relayPortMin)) 1 -}}
{{- end -}}
