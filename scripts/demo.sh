#!/usr/bin/env bash
# The main job on an embedded default, end to end on this machine: starts a local source
# registry with sample multi-arch images, makes a signing key, locks the images to digests,
# builds and signs the bundle (twice: the second from the cache, byte-identical), inspects it,
# verifies it with `bundle` and `installer`, audits it with stock tools only, reads an image
# from the extracted layout with skopeo, and shows that a one-byte change is caught. Prints what
# it does; leaves nothing behind. It also loads the bundle into a second registry with
# `installer load`, twice (the second run uploads nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== building"
cargo build --release --workspace -q
BUNDLE=$PWD/target/release/bundle
INSTALLER=$PWD/target/release/installer
WORK=$(mktemp -d)
REGISTRY_PID=
TARGET_PID=
cleanup() {
  for pid in $REGISTRY_PID $TARGET_PID; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

step "starting a local source registry (Debian docker-registry) with sample images"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HOST=127.0.0.1:$PORT
printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
  "$WORK/registry" "$HOST" > "$WORK/registry.yml"
docker-registry serve "$WORK/registry.yml" > "$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done
{
  echo 'platforms = ["linux/amd64", "linux/arm64"]'
  echo "[registries.\"$HOST\"]"
  echo 'insecure = true'
} > "$WORK/images.toml"
for name in $(python3 scripts/gen-sample-images.py "$WORK/layouts"); do
  HOME="$WORK" skopeo --insecure-policy copy -q --all --dest-tls-verify=false --dest-no-creds \
    "oci:$WORK/layouts/${name/\//_}:v1" "docker://$HOST/$name:v1"
  platforms=""; [ "$name" = demo/tools ] && platforms='platforms = ["linux/amd64"]'
  printf '[[images]]\nref = "%s/%s:v1"\n%s\n' "$HOST" "$name" "$platforms" >> "$WORK/images.toml"
  echo "pushed $HOST/$name:v1"
done
cat "$WORK/images.toml"

step "bundle keygen (Ed25519, minisign formats; passphrase from BUNDLE_KEY_PASSPHRASE)"
export BUNDLE_KEY_PASSPHRASE
BUNDLE_KEY_PASSPHRASE=$(head -c 18 /dev/urandom | base64)
"$BUNDLE" keygen -o "$WORK/release"

step "bundle lock (tags -> digests, manifests.lock)"
"$BUNDLE" lock --images "$WORK/images.toml" --lock "$WORK/manifests.lock"

step "bundle build (fetch into the cache, pack, sign)"
"$BUNDLE" build --images "$WORK/images.toml" --lock "$WORK/manifests.lock" --locked \
  --cache "$WORK/cache" -o "$WORK/sample.tar.zst" --sign-key "$WORK/release.key" \
  --name sample --bundle-version 0.1.0
ls -l "$WORK/sample.tar.zst" "$WORK/sample.tar.zst.minisig"

step "bundle build again: everything comes from the cache, the bundle is byte-identical"
"$BUNDLE" build --images "$WORK/images.toml" --lock "$WORK/manifests.lock" --locked \
  --cache "$WORK/cache" -o "$WORK/again.tar.zst" --sign-key "$WORK/release.key" \
  --name sample --bundle-version 0.1.0
cmp "$WORK/sample.tar.zst" "$WORK/again.tar.zst" && echo "identical"

step "bundle inspect"
"$BUNDLE" inspect "$WORK/sample.tar.zst"

step "bundle verify and installer verify"
"$BUNDLE" verify "$WORK/sample.tar.zst" --key "$WORK/release.pub"
"$INSTALLER" verify "$WORK/sample.tar.zst" --key "$WORK/release.pub"

step "auditor path with stock tools only (docs/auditing.md)"
mkdir "$WORK/audit"
(cd "$WORK/audit" && BUNDLE="$WORK/sample.tar.zst" KEY="$WORK/release.pub" \
  sh -c "$(sed -n '/<!-- audit-script -->/,$p' "$OLDPWD/docs/auditing.md" | sed -n '/^```sh$/,/^```$/p' | sed '1d;$d')")

step "installer load into a second, empty registry (the enclave's), straight from the bundle"
TPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TARGET=127.0.0.1:$TPORT
printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
  "$WORK/target" "$TARGET" > "$WORK/target.yml"
docker-registry serve "$WORK/target.yml" > "$WORK/target.log" 2>&1 &
TARGET_PID=$!
for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$TPORT") 2>/dev/null && break; sleep 0.05; done
"$INSTALLER" load "$WORK/sample.tar.zst" --registry "$TARGET" --insecure-registry --key "$WORK/release.pub"
echo "loaded digest: $(HOME="$WORK" skopeo --insecure-policy inspect --raw --tls-verify=false \
  "docker://$TARGET/demo/homeserver:v1" | sha256sum | cut -d' ' -f1)"
"$INSTALLER" load "$WORK/sample.tar.zst" --registry "$TARGET" --insecure-registry --key "$WORK/release.pub"

step "an extracted bundle is an OCI layout: skopeo reads the images from it"
"$BUNDLE" extract "$WORK/sample.tar.zst" "$WORK/extracted" --key "$WORK/release.pub"
HOME="$WORK" skopeo --insecure-policy inspect --raw "oci:$WORK/extracted:$HOST/demo/homeserver:v1" | head -c 300; echo

step "a one-byte change is refused, naming the member"
cp "$WORK/sample.tar.zst" "$WORK/tampered.tar.zst"
printf '\xff' | dd of="$WORK/tampered.tar.zst" bs=1 seek=$((6 << 20)) conv=notrunc status=none
if "$BUNDLE" verify "$WORK/tampered.tar.zst" --key "$WORK/release.pub"; then
  echo "tampered bundle was accepted" >&2; exit 1
fi
printf '\ndemo complete: locked, built, signed, inspected, verified twice, audited, loaded (twice: the second uploads nothing), read by skopeo, tamper refused\n'
