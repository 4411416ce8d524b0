{{/* Antivirus partials (templates/antivirus/*). */}}

{{/* clamd's Service address, as the scanners reach it. */}}
{{- define "messenger.clamdHost" -}}
{{- include "messenger.svcHost" (dict "root" . "name" (printf "%s-clamd" .Release.Name)) -}}
{{- end -}}

{{/* The Synapse instance serving media (the media pool's one instance, or main). */}}
{{- define "messenger.mediaHost" -}}
{{- $t := include "messenger.topology" . | fromYaml -}}
{{- $host := $t.main.host -}}
{{- range $t.pools }}{{ if has "media" .routes }}{{ $host = (first .instances).host }}{{ end }}{{ end -}}
{{- $host -}}
{{- end -}}

{{/* The Synapse `modules` entry of the upload scanner (homeserver.yaml). */}}
{{- define "messenger.antivirusModule" -}}
- module: messenger_antivirus.ClamavScanner
  config:
    clamd:
      host: {{ include "messenger.clamdHost" . }}
      port: 3310
    timeout: {{ .Values.antivirus.scanTimeout }}
    fail_closed: {{ .Values.antivirus.failClosed }}
    # clamd's StreamMaxLength (features.maxUploadSize, in bytes).
    stream_max_length: {{ include "messenger.bytes" .Values.features.maxUploadSize }}
{{- end -}}

{{/* A size with a K, M or G suffix (Synapse's and clamd's units, powers of 1024) in bytes. */}}
{{- define "messenger.bytes" -}}
{{- $s := upper (toString .) -}}
{{- $n := trimSuffix "B" $s -}}
{{- if hasSuffix "G" $n }}{{ mul (trimSuffix "G" $n | int64) 1073741824 }}
{{- else if hasSuffix "M" $n }}{{ mul (trimSuffix "M" $n | int64) 1048576 }}
{{- else if hasSuffix "K" $n }}{{ mul (trimSuffix "K" $n | int64) 1024 }}
{{- else }}{{ $n | int64 }}{{ end -}}
{{- end -}}

{{/* A duration like 30d, 12h, 90m, 60s in seconds. */}}
{{- define "messenger.seconds" -}}
{{- $u := dict "s" 1 "m" 60 "h" 3600 "d" 86400 -}}
{{- $unit := substr (sub (len .) 1 | int) (len .) . -}}
{{- mul (trimSuffix $unit . | int64) (index $u $unit) -}}
{{- end -}}
