#!/usr/bin/env bash
# The main job on an embedded default, end to end on this machine: starts a local source
# registry with sample multi-arch images, makes a signing key, locks the images to digests,
# builds and signs the bundle (twice: the second from the cache, byte-identical), inspects it,
# verifies it with `bundle` and `installer`, audits it with stock tools only, reads an image
# from the extracted layout with skopeo, and shows that a one-byte change is caught. Prints what
# it does; leaves nothing behind. It also loads the bundle into a second registry with
# `installer load`, twice (the second run uploads nothing). Besides the images, the bundle
# carries the stack's own chart (charts/messenger, pulled back with helm after the load), the
# real Talos-signed ClamAV test databases as a layer on a sample image, helm as a pinned tool,
# and a freshly made site CA.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== building"
cargo build --release --workspace -q
REPO=$PWD
BUNDLE=$REPO/target/release/bundle
INSTALLER=$REPO/target/release/installer
WORK=$(mktemp -d)
# Run in the work directory: the repository's own tools.toml, charts.toml and releases.toml
# name public downloads this demo does not need.
cd "$WORK"
# The passphrase of the signing key and of the CA key (never on a command line).
export BUNDLE_KEY_PASSPHRASE
BUNDLE_KEY_PASSPHRASE=$(head -c 18 /dev/urandom | base64)
. "$REPO/scripts/registry.sh"
cleanup() {
  stop_registries
  rm -rf "$WORK"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

step "starting a local source registry (Debian docker-registry) with sample images"
start_registry registry; HOST=$REGISTRY
{
  echo 'platforms = ["linux/amd64", "linux/arm64"]'
  echo "[registries.\"$HOST\"]"
  echo 'insecure = true'
} > "$WORK/images.toml"
for name in $(python3 "$REPO/scripts/gen-sample-images.py" "$WORK/layouts"); do
  HOME="$WORK" skopeo --insecure-policy copy -q --all --dest-tls-verify=false --dest-no-creds \
    "oci:$WORK/layouts/${name/\//_}:v1" "docker://$HOST/$name:v1"
  platforms=""; [ "$name" = demo/tools ] && platforms='platforms = ["linux/amd64"]'
  printf '[[images]]\nref = "%s/%s:v1"\n%s\n' "$HOST" "$name" "$platforms" >> "$WORK/images.toml"
  echo "pushed $HOST/$name:v1"
done
printf '[clamav]\nimage = "%s/demo/tools:v1"\ndatabases = ["test-1", "test-2", "bytecode"]\n' "$HOST" \
  >> "$WORK/images.toml"
printf 'dir = "clamav-db"\ncert_dir = "clamav-certs"\n' >> "$WORK/images.toml"
cat "$WORK/images.toml"

step "ClamAV: a cvdupdate-style directory (the real Talos-signed test databases)"
TESTDATA=$(cd "$REPO/.." && pwd)/shared/testdata/clamav
mkdir "$WORK/clamav-db" "$WORK/clamav-certs"
cp "$TESTDATA"/test-1.cvd* "$TESTDATA"/test-2.cvd* "$TESTDATA"/bytecode.cvd "$WORK/clamav-db/"
cp "$TESTDATA/clamav-test.crt" "$WORK/clamav-certs/"
ls "$WORK/clamav-db"

step "tools.toml: helm, pinned by sha256 (here from a local archive of the installed binary)"
mkdir -p "$WORK/dl/linux-amd64"
cp "$(command -v helm)" "$WORK/dl/linux-amd64/helm"
tar -C "$WORK/dl" -czf "$WORK/dl/helm-linux-amd64.tar.gz" linux-amd64/helm
printf '[[tool]]\nname = "helm"\nversion = "%s"\n\n' "$(helm version --short)" > "$WORK/tools.toml"
for arch in amd64 arm64; do
  printf '[[tool.download]]\nplatform = "linux/%s"\nurl = "file://%s"\nmember = "linux-amd64/helm"\n\n' \
    "$arch" "$WORK/dl/helm-linux-amd64.tar.gz" >> "$WORK/tools.toml"
done
cat "$WORK/tools.toml"

step "the stack's own chart, and a site CA (bundle ca init; the key only age-encrypted)"
mkdir "$WORK/charts"
cp -r "$REPO/charts/messenger" "$WORK/charts/"
"$BUNDLE" ca init --out "$WORK/ca" --name "Demo Site Root CA"

step "bundle keygen (Ed25519, minisign formats; passphrase from BUNDLE_KEY_PASSPHRASE)"
"$BUNDLE" keygen -o "$WORK/release"

step "bundle lock (tags -> digests; tools and ClamAV databases validated and pinned by sha256)"
"$BUNDLE" lock --images "$WORK/images.toml" --lock "$WORK/manifests.lock"

step "bundle build (fetch into the cache, pack, sign)"
"$BUNDLE" build --images "$WORK/images.toml" --lock "$WORK/manifests.lock" --locked \
  --cache "$WORK/cache" -o "$WORK/sample.tar.zst" --sign-key "$WORK/release.key" \
  --name sample --bundle-version 0.1.0 --ca "$WORK/ca"
ls -l "$WORK/sample.tar.zst" "$WORK/sample.tar.zst.minisig"

step "bundle build again: everything comes from the cache, the bundle is byte-identical"
"$BUNDLE" build --images "$WORK/images.toml" --lock "$WORK/manifests.lock" --locked \
  --cache "$WORK/cache" -o "$WORK/again.tar.zst" --sign-key "$WORK/release.key" \
  --name sample --bundle-version 0.1.0 --ca "$WORK/ca"
cmp "$WORK/sample.tar.zst" "$WORK/again.tar.zst" && echo "identical"

step "bundle inspect"
"$BUNDLE" inspect "$WORK/sample.tar.zst"

step "bundle verify and installer verify"
"$BUNDLE" verify "$WORK/sample.tar.zst" --key "$WORK/release.pub"
"$INSTALLER" verify "$WORK/sample.tar.zst" --key "$WORK/release.pub"

step "auditor path with stock tools only (docs/auditing.md)"
mkdir "$WORK/audit"
(cd "$WORK/audit" && BUNDLE="$WORK/sample.tar.zst" KEY="$WORK/release.pub" \
  sh -c "$(sed -n '/<!-- audit-script -->/,$p' "$REPO/docs/auditing.md" | sed -n '/^```sh$/,/^```$/p' | sed '1d;$d')")

step "installer load into a second, empty registry (the enclave's), straight from the bundle"
start_registry target; TARGET=$REGISTRY
"$INSTALLER" load "$WORK/sample.tar.zst" --registry "$TARGET" --insecure-registry --key "$WORK/release.pub"
echo "loaded digest: $(HOME="$WORK" skopeo --insecure-policy inspect --raw --tls-verify=false \
  "docker://$TARGET/demo/homeserver:v1" | sha256sum | cut -d' ' -f1)"
"$INSTALLER" load "$WORK/sample.tar.zst" --registry "$TARGET" --insecure-registry --key "$WORK/release.pub"

step "the chart, pulled by the official helm from the loaded registry, is the bundle's"
mkdir "$WORK/pulled"
helm pull "oci://$TARGET/charts/messenger" --version 0.1.0 --plain-http -d "$WORK/pulled"
sha256sum "$WORK/pulled/messenger-0.1.0.tgz"
"$BUNDLE" inspect "$WORK/sample.tar.zst" --members --json | python3 -c '
import json, sys
for m in json.load(sys.stdin)["members"]:
    if m["path"].startswith(("charts/", "tools/", "ca/")):
        print(m["sha256"], m["path"])'

step "installer tools writes the pinned helm out of the verified bundle"
"$INSTALLER" tools "$WORK/sample.tar.zst" --key "$WORK/release.pub" --out "$WORK/bin"
"$WORK/bin/helm" version --short

step "installer ca issuer: the cert-manager ClusterIssuer and its Secret, from the bundle's CA"
"$INSTALLER" ca issuer --bundle "$WORK/sample.tar.zst" --key "$WORK/release.pub" --out "$WORK/issuer"
ls "$WORK/issuer"

step "an extracted bundle is an OCI layout: skopeo reads the images from it"
"$BUNDLE" extract "$WORK/sample.tar.zst" "$WORK/extracted" --key "$WORK/release.pub"
HOME="$WORK" skopeo --insecure-policy inspect --raw "oci:$WORK/extracted:$HOST/demo/homeserver:v1" | head -c 300; echo

step "a one-byte change is refused, naming the member"
cp "$WORK/sample.tar.zst" "$WORK/tampered.tar.zst"
printf '\xff' | dd of="$WORK/tampered.tar.zst" bs=1 seek=$((6 << 20)) conv=notrunc status=none
if "$BUNDLE" verify "$WORK/tampered.tar.zst" --key "$WORK/release.pub"; then
  echo "tampered bundle was accepted" >&2; exit 1
fi
printf '\ndemo complete: locked, built, signed, inspected, verified twice, audited, loaded (twice: the second uploads nothing), chart pulled by helm, tools and CA used, read by skopeo, tamper refused\n'
