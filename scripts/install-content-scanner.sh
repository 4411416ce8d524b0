#!/usr/bin/env bash
# Installs matrix-content-scanner 1.4.0 (the version of the carried image,
# docker.io/vectorim/matrix-content-scanner:v1.4.0) from PyPI for the antivirus tests.
# PyPI has only its sdist, whose Rust part takes vodozemac from a GitHub commit; where GitHub is
# out of reach, the sdist is built with vodozemac 0.8.0 from crates.io instead (the same
# `insecure-pk-encryption` API, used only by the encrypted-body endpoints). Needs cargo.
set -euo pipefail
VERSION=1.4.0
python3 -c 'import matrix_content_scanner' 2>/dev/null && exit 0
pip install -q "matrix-content-scanner==$VERSION" 2>/dev/null && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pip download -q --no-deps --no-binary :all: -d "$work" "matrix-content-scanner==$VERSION"
tar -xzf "$work/matrix_content_scanner-$VERSION.tar.gz" -C "$work"
src="$work/matrix_content_scanner-$VERSION"
sed -i 's|^vodozemac = { git = "https://github.com/matrix-org/vodozemac.git", features|vodozemac = { version = "=0.8.0", features|' \
  "$src/rust/Cargo.toml"
grep -q 'version = "=0.8.0"' "$src/rust/Cargo.toml"
# Drop the git package from the lock; cargo resolves the crates.io one.
python3 - "$src/Cargo.lock" <<'PY'
import sys
path = sys.argv[1]
blocks = open(path).read().split("\n[[package]]\n")
kept = [b for b in blocks if 'source = "git+https://github.com/matrix-org/vodozemac' not in b]
open(path, "w").write("\n[[package]]\n".join(kept))
PY
pip install -q "$src"
python3 -c 'import matrix_content_scanner.mcs'
