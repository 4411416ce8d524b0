#!/usr/bin/env bash
# Scan overhead of the antivirus on the rehearsal stack (Synapse, HAProxy, clamd with a
# sigtool test database, matrix-content-scanner, all on loopback), in one run: the median of 7
# uploads of 10 MiB of random bytes through the chart's HAProxy with the antivirus on and off,
# the first download through the content scanner, and clamd's resident memory. The numbers
# come from the #[ignore]d measurement `antivirus::bench_upload_scan_overhead`; the full
# signature set is not used (its scan time and memory are not measured here).
# Needs what scripts/setup.sh installs (PostgreSQL, Redis, HAProxy, Synapse, clamav-daemon,
# matrix-content-scanner).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test -q -p installer --test it antivirus::bench_upload_scan_overhead -- \
  --ignored --nocapture --exact 2>&1 | grep -E '^(antivirus|scan overhead)'
