#!/usr/bin/env bash
# Checks Cargo.lock against the RustSec advisory database with cargo-audit. Needs the database:
# fetched from GitHub when online, or a local checkout given as the first argument (for a
# closed network: a copy of https://github.com/rustsec/advisory-db). Advisories that do not
# apply are listed, with why, in .cargo/audit.toml and docs/advisories.md.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-audit >/dev/null || cargo install --locked cargo-audit
if [ $# -ge 1 ]; then
  exec cargo audit --db "$1" --no-fetch --stale
fi
exec cargo audit
