#!/usr/bin/env bash
# Benchmark of `bundle build` against the standard tools, in one run, on IMAGES (default 20)
# single-platform images of about SIZE_MIB (default 1024) distinct MiB in a local
# docker-registry: gzip layers of random data, three base layers shared between images
# (one by all, two by half each) and two layers of each image's own.
#   cold: bundle build, empty cache  vs  skopeo sync --all --src yaml --dest dir
#                                         + tar -cf - DIR | zstd -T0 -3
#   warm: bundle build, cache filled  vs  the same skopeo pipeline again (it has no cache)
# skopeo 1.9 syncs from a YAML source listing every repository and tag of the registry
# (`--src yaml`); `--src docker` takes one repository per run.
# Prints times, ratios, sizes and our peak memory. Targets: cold >= 1.5x faster, warm >= 5x
# faster, bundle no larger than the skopeo pipeline's output, peak memory < 128 MiB.
# The bundle is not signed: decrypting a minisign key is a fixed cost (scrypt, ~1 GiB for a
# few seconds) that scripts/bench-archive.sh reports on its own.
set -euo pipefail
SIZE_MIB=${SIZE_MIB:-1024}
IMAGES=${IMAGES:-20}
cd "$(dirname "$0")/.."
for tool in docker-registry skopeo zstd python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: scripts/setup.sh installs it" >&2; exit 1; }
done
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
cargo build --release -q
BIN=$PWD/target/release/bundle
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/bench-build.XXXXXX")
REGISTRY_PID=
cleanup() {
  if [ -n "$REGISTRY_PID" ]; then kill "$REGISTRY_PID" 2>/dev/null || true; wait "$REGISTRY_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
# skopeo keeps a blob-info cache under $HOME; keep it (and any default bundle cache) in $WORK.
SKOPEO=(env HOME="$WORK/home" skopeo --insecure-policy)

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HOST=127.0.0.1:$PORT
cat > "$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: $HOST
EOF
docker-registry serve "$WORK/registry.yml" > "$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 200); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.05
done

echo "generating $IMAGES images of about $SIZE_MIB MiB in total in $WORK ..."
python3 - "$WORK/layout" "$SIZE_MIB" "$IMAGES" <<'PY'
import hashlib, io, json, os, sys, tarfile, zlib

out, size_mib, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
MIB = 1 << 20
os.makedirs(f"{out}/blobs/sha256")


def put(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(f"{out}/blobs/sha256/{digest}", "wb") as f:
        f.write(data)
    return "sha256:" + digest


def layer(name, size):
    """A gzip layer holding one file of `size` random bytes: (digest, size, diff_id)."""
    header = tarfile.TarInfo(name)
    header.size, header.mtime, header.mode = size, 1_700_000_000, 0o644
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.USTAR_FORMAT) as t:
        t.addfile(header, io.BytesIO(os.urandom(size)))
    raw = tar.getvalue()
    # Random data does not shrink: stored deflate blocks are what gzip -1 writes for it too,
    # without the time.
    gz = zlib.compressobj(0, zlib.DEFLATED, 31)
    data = gz.compress(raw) + gz.flush()
    return put(data), len(data), "sha256:" + hashlib.sha256(raw).hexdigest()


# 10 % in a base layer all images share, 7 % in each of two runtime layers half the images
# share, the rest in two layers of each image's own (two thirds and one third).
base = layer("base/os.bin", size_mib * MIB * 10 // 100)
runtimes = [layer(f"runtime/{i}.bin", size_mib * MIB * 7 // 100) for i in range(2)]
own = (size_mib * MIB - base[1] - 2 * runtimes[0][1]) // count
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
for i in range(count):
    layers = [base, runtimes[i * 2 // count], layer(f"app/{i}/deps.bin", own * 2 // 3),
              layer(f"app/{i}/app.bin", own - own * 2 // 3)]
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": [f"/app/{i}"]},
        "rootfs": {"type": "layers", "diff_ids": [l[2] for l in layers]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": put(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": l[0], "size": l[1]} for l in layers],
    }).encode()
    index["manifests"].append({
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(manifest),
        "size": len(manifest), "platform": {"os": "linux", "architecture": "amd64"},
        "annotations": {"org.opencontainers.image.ref.name": f"img-{i:02d}"},
    })
with open(f"{out}/index.json", "w") as f:
    json.dump(index, f)
with open(f"{out}/oci-layout", "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
distinct = sum(os.path.getsize(f"{out}/blobs/sha256/{b}") for b in os.listdir(f"{out}/blobs/sha256"))
print(f"  {count} images, {distinct / MIB:.0f} MiB of distinct blobs, "
      f"{base[1] / MIB + runtimes[0][1] / MIB + own / MIB:.0f} MiB per image")
PY

echo "pushing them to $HOST with skopeo ..."
printf 'platforms = ["linux/amd64"]\n\n[registries."%s"]\ninsecure = true\n' "$HOST" > "$WORK/images.toml"
printf '%s:\n  tls-verify: false\n  images:\n' "$HOST" > "$WORK/sync.yaml"
for i in $(seq -f '%02g' 0 $((IMAGES - 1))); do
  "${SKOPEO[@]}" copy -q --preserve-digests --dest-tls-verify=false \
    "oci:$WORK/layout:img-$i" "docker://$HOST/bench/img-$i:v1"
  printf '\n[[images]]\nref = "%s/bench/img-%s:v1"\n' "$HOST" "$i" >> "$WORK/images.toml"
  printf '    bench/img-%s: ["v1"]\n' "$i" >> "$WORK/sync.yaml"
done
rm -rf "$WORK/layout"
"$BIN" -q lock --images "$WORK/images.toml" --lock "$WORK/manifests.lock"

measure() { # name, command... -> seconds and peak RSS (KiB) in $SECS / $RSS
  local log="$WORK/time.log"
  sync # start each run without the previous run's dirty pages to write back
  /usr/bin/time -f '%e %M' -o "$log" "${@:2}"
  read -r SECS RSS < "$log"
  printf '  %-40s %7.2f s  %8d KiB peak RSS\n' "$1" "$SECS" "$RSS"
}
BUILD=("$BIN" -q build --images "$WORK/images.toml" --lock "$WORK/manifests.lock" --locked --cache "$WORK/cache")
# skopeo sync has no --quiet in 1.9: its progress goes to a log, shown if it fails.
PIPELINE="{ env HOME='$WORK/home' skopeo --insecure-policy sync --all --src yaml --dest dir \
  '$WORK/sync.yaml' '$WORK/sync' > '$WORK/sync.log' 2>&1 || { cat '$WORK/sync.log'; exit 1; }; } \
  && tar -cf - -C '$WORK/sync' . | zstd -T0 -3 -q -f -o '$WORK/ref.tar.zst'"

echo "cold (bundle with an empty cache; skopeo always fetches everything):"
measure "bundle build (empty cache)" "${BUILD[@]}" -o "$WORK/cold.tar.zst"
OUR_COLD=$SECS; OUR_RSS=$RSS
rm -rf "$WORK/sync" "$WORK/ref.tar.zst"
measure "skopeo sync + tar | zstd -T0 -3" sh -c "$PIPELINE"
REF_COLD=$SECS
echo "warm (bundle with the cache filled):"
measure "bundle build (warm cache)" "${BUILD[@]}" -o "$WORK/warm.tar.zst"
OUR_WARM=$SECS; [ "$RSS" -gt "$OUR_RSS" ] && OUR_RSS=$RSS
rm -rf "$WORK/sync" "$WORK/ref.tar.zst"
measure "skopeo sync + tar | zstd -T0 -3" sh -c "$PIPELINE"
REF_WARM=$SECS
cmp -s "$WORK/cold.tar.zst" "$WORK/warm.tar.zst" && echo "  cold and warm bundles are byte-identical" \
  || echo "  WARNING: cold and warm bundles differ"

REF_SIZE=$(stat -c %s "$WORK/ref.tar.zst"); OUR_SIZE=$(stat -c %s "$WORK/cold.tar.zst")
SYNCED=$(du -sb "$WORK/sync" | cut -f1)
echo "sizes: skopeo dir ${SYNCED} bytes, its tar|zstd ${REF_SIZE} bytes, bundle ${OUR_SIZE} bytes"
python3 - "$REF_COLD" "$OUR_COLD" "$REF_WARM" "$OUR_WARM" "$OUR_RSS" "$REF_SIZE" "$OUR_SIZE" <<'PY'
import sys
rc, oc, rw, ow, rss, rs, os_ = map(float, sys.argv[1:])
cold, warm, size, peak = rc / oc, rw / ow, os_ / rs, rss / 1024
def verdict(ok):
    return "OK" if ok else "MISSED"
print(f"cold build speed vs skopeo sync + tar|zstd: {cold:6.2f}x  (target >= 1.50x) {verdict(cold >= 1.5)}")
print(f"warm build speed vs skopeo sync + tar|zstd: {warm:6.2f}x  (target >= 5.00x) {verdict(warm >= 5)}")
print(f"bundle size vs skopeo pipeline's output:    {size:6.3f}   (target <= 1.000) {verdict(size <= 1)}")
print(f"peak memory of bundle build:            {peak:7.1f} MiB (target < 128 MiB) {verdict(peak < 128)}")
PY
