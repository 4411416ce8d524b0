#!/usr/bin/env bash
# Delta bundles measured: IMAGES (default 20) images of about SIZE_MIB (default 1024) distinct
# MiB are built into a full bundle and loaded; then one image is rebuilt with a new top layer
# of TOP_MIB (default 16) MiB under the same tag, and the next release is built both in full
# and as a delta (`bundle build --since`), each loaded: the full one into an empty registry,
# the delta over the first load.
# Prints sizes and times, and the ratios delta/full (size, build, load). The builds run with
# the cache filled, as a release engineer's would be.
set -euo pipefail
SIZE_MIB=${SIZE_MIB:-1024}
IMAGES=${IMAGES:-20}
TOP_MIB=${TOP_MIB:-16}
. "$(dirname "$0")/bench-common.sh"
bench_start delta docker-registry skopeo python3
SKOPEO=(env HOME="$WORK/home" skopeo --insecure-policy)

start_registry source; HOST=$REGISTRY
start_registry first; FIRST=$REGISTRY
start_registry fresh; FRESH=$REGISTRY

echo "generating $IMAGES images of about $SIZE_MIB MiB in total ..."
python3 scripts/gen-bench-images.py "$WORK/layout" "$SIZE_MIB" "$IMAGES"
# img-00 rebuilt: its layers plus a new top layer of random data, as `img-00-next`.
python3 - "$WORK/layout" "$TOP_MIB" <<'PY'
import hashlib, io, json, os, sys, tarfile, zlib
out, mib = sys.argv[1], int(sys.argv[2])
def put(data):
    digest = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{digest}", "wb").write(data)
    return "sha256:" + digest
def blob(digest):
    return open(f"{out}/blobs/sha256/{digest.split(':')[1]}", "rb").read()
index = json.load(open(f"{out}/index.json"))
entry = next(m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == "img-00")
manifest = json.loads(blob(entry["digest"]))
config = json.loads(blob(manifest["config"]["digest"]))
header = tarfile.TarInfo("app/0/patch.bin")
header.size, header.mtime = mib << 20, 1_700_000_000
tar = io.BytesIO()
with tarfile.open(fileobj=tar, mode="w", format=tarfile.USTAR_FORMAT) as t:
    t.addfile(header, io.BytesIO(os.urandom(mib << 20)))
raw = tar.getvalue()
gz = zlib.compressobj(0, zlib.DEFLATED, 31)
data = gz.compress(raw) + gz.flush()
config["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(raw).hexdigest())
config_bytes = json.dumps(config).encode()
manifest["config"] = dict(manifest["config"], digest=put(config_bytes), size=len(config_bytes))
manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                           "digest": put(data), "size": len(data)})
manifest_bytes = json.dumps(manifest).encode()
index["manifests"].append(dict(entry, digest=put(manifest_bytes), size=len(manifest_bytes),
                               annotations={"org.opencontainers.image.ref.name": "img-00-next"}))
json.dump(index, open(f"{out}/index.json", "w"))
PY
printf 'platforms = ["linux/amd64"]\n\n[registries."%s"]\ninsecure = true\n' "$HOST" > "$WORK/images.toml"
for i in $(seq -f '%02g' 0 $((IMAGES - 1))); do
  "${SKOPEO[@]}" copy -q --preserve-digests --dest-tls-verify=false \
    "oci:$WORK/layout:img-$i" "docker://$HOST/bench/img-$i:v1"
  printf '\n[[images]]\nref = "%s/bench/img-%s:v1"\n' "$HOST" "$i" >> "$WORK/images.toml"
done

BUILD=("$BIN" -q build --images "$WORK/images.toml" --lock "$WORK/manifests.lock" --locked --cache "$WORK/cache")
LOAD=("$INSTALLER" -q load --insecure-skip-verify --insecure-registry)

"$BIN" -q lock --images "$WORK/images.toml" --lock "$WORK/manifests.lock"
echo "release 1.0:"
measure "bundle build (cold cache)" "${BUILD[@]}" -o "$WORK/v1.tar.zst" --bundle-version 1.0
measure "installer load (empty registry)" "${LOAD[@]}" "$WORK/v1.tar.zst" --registry "$FIRST"

echo "img-00 gets a new top layer of $TOP_MIB MiB; release 1.1:"
"${SKOPEO[@]}" copy -q --preserve-digests --dest-tls-verify=false \
  "oci:$WORK/layout:img-00-next" "docker://$HOST/bench/img-00:v1"
rm -rf "$WORK/layout"
"$BIN" -q lock --images "$WORK/images.toml" --lock "$WORK/manifests.lock"
measure "bundle build, full (warm cache)" "${BUILD[@]}" -o "$WORK/v2.tar.zst" --bundle-version 1.1
FULL_BUILD=$SECS
measure "bundle build --since v1 (warm cache)" "${BUILD[@]}" -o "$WORK/d.tar.zst" --bundle-version 1.1 --since "$WORK/v1.tar.zst"
DELTA_BUILD=$SECS
measure "installer load full (empty registry)" "${LOAD[@]}" "$WORK/v2.tar.zst" --registry "$FRESH"
FULL_LOAD=$SECS
measure "installer load delta (over release 1.0)" "${LOAD[@]}" "$WORK/d.tar.zst" --registry "$FIRST"
DELTA_LOAD=$SECS

same=yes
for i in $(seq -f '%02g' 0 $((IMAGES - 1))); do
  a=$("${SKOPEO[@]}" inspect --raw --tls-verify=false "docker://$FIRST/bench/img-$i:v1" | sha256sum)
  b=$("${SKOPEO[@]}" inspect --raw --tls-verify=false "docker://$FRESH/bench/img-$i:v1" | sha256sum)
  [ "$a" = "$b" ] || { same=no; echo "  img-$i differs between the two registries"; }
done
echo "  registries digest-identical after delta-over-1.0 and full 1.1: $same"

FULL=$(stat -c %s "$WORK/v2.tar.zst"); DELTA=$(stat -c %s "$WORK/d.tar.zst")
python3 - "$FULL" "$DELTA" "$FULL_BUILD" "$DELTA_BUILD" "$FULL_LOAD" "$DELTA_LOAD" <<'PY'
import sys
full, delta, fb, db, fl, dl = map(float, sys.argv[1:])
print(f"sizes: full {full / 2**20:.1f} MiB, delta {delta / 2**20:.1f} MiB ({delta / full:.3f} of the full bundle)")
print(f"build: full {fb:.2f} s, delta {db:.2f} s ({db / fb:.2f}x the time)")
print(f"load:  full {fl:.2f} s, delta {dl:.2f} s ({dl / fl:.2f}x the time)")
PY
