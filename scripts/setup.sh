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
command -v kubernetes-validate >/dev/null || pip install -q kubernetes-validate
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
