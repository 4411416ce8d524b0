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
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
# --- smoke and rehearsal tests: Synapse with PostgreSQL and Redis support ---
python3 -c 'import synapse, psycopg2, txredisapi, hiredis' 2>/dev/null || pip install -q 'matrix-synapse[postgres,redis]'
# --- end smoke and rehearsal tests ---
