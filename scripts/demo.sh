#!/usr/bin/env bash
# The main job on an embedded default, end to end on this machine: stages sample content (an
# OCI layout with blobs, a chart, docs), makes a signing key, packs and signs a bundle, inspects
# it, verifies it with `bundle` and `installer`, audits it with stock tools only, and shows that
# a one-byte change is caught. Prints what it does; leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== building"
cargo build --release --workspace -q
BUNDLE=$PWD/target/release/bundle
INSTALLER=$PWD/target/release/installer
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
step() { printf '\n== %s\n' "$*"; }

step "staging sample content in $WORK/stage"
mkdir -p "$WORK/stage/blobs/sha256" "$WORK/stage/charts" "$WORK/stage/docs"
for i in 1 2 3; do
  head -c $((4 << 20)) /dev/urandom | gzip -1 > "$WORK/layer"
  digest=$(sha256sum "$WORK/layer" | cut -d' ' -f1)
  mv "$WORK/layer" "$WORK/stage/blobs/sha256/$digest"
done
echo '{"imageLayoutVersion":"1.0.0"}' > "$WORK/stage/oci-layout"
echo '{"schemaVersion":2,"manifests":[]}' > "$WORK/stage/index.json"
{ yes 'apiVersion: v2' || true; } | head -n 200000 > "$WORK/stage/charts/sample-chart.yaml"
cp README.md "$WORK/stage/docs/"
du -sh "$WORK/stage"

step "bundle keygen (Ed25519, minisign formats; passphrase from BUNDLE_KEY_PASSPHRASE)"
export BUNDLE_KEY_PASSPHRASE
BUNDLE_KEY_PASSPHRASE=$(head -c 18 /dev/urandom | base64)
"$BUNDLE" keygen -o "$WORK/release"

step "bundle pack (signed)"
"$BUNDLE" pack "$WORK/stage" -o "$WORK/sample.tar.zst" --sign-key "$WORK/release.key" \
  --name sample --bundle-version 0.1.0 --platform linux/amd64 --platform linux/arm64
ls -l "$WORK/sample.tar.zst" "$WORK/sample.tar.zst.minisig"

step "bundle inspect"
"$BUNDLE" inspect "$WORK/sample.tar.zst"

step "bundle verify and installer verify"
"$BUNDLE" verify "$WORK/sample.tar.zst" --key "$WORK/release.pub"
"$INSTALLER" verify "$WORK/sample.tar.zst" --key "$WORK/release.pub"

step "auditor path with stock tools only (docs/auditing.md)"
mkdir "$WORK/audit"
(cd "$WORK/audit" && BUNDLE="$WORK/sample.tar.zst" KEY="$WORK/release.pub" \
  sh -c "$(sed -n '/<!-- audit-script -->/,$p' "$OLDPWD/docs/auditing.md" | sed -n '/^```sh$/,/^```$/p' | sed '1d;$d')")

step "a one-byte change is refused, naming the member"
cp "$WORK/sample.tar.zst" "$WORK/tampered.tar.zst"
printf '\xff' | dd of="$WORK/tampered.tar.zst" bs=1 seek=$((6 << 20)) conv=notrunc status=none
if "$BUNDLE" verify "$WORK/tampered.tar.zst" --key "$WORK/release.pub"; then
  echo "tampered bundle was accepted" >&2; exit 1
fi
printf '\ndemo complete: packed, signed, inspected, verified twice, audited, tamper refused\n'
