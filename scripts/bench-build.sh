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
# Each side runs RUNS (default 3) times, the order alternating; the medians count. Prints times, ratios,
# sizes and our peak memory. Targets: cold >= 4x faster, warm >= 15x faster, bundle no larger
# than the skopeo pipeline's output, peak memory < 128 MiB.
# The bundle is not signed: decrypting a minisign key is a fixed cost (scrypt, ~1 GiB for a
# few seconds) that scripts/bench-archive.sh reports on its own.
set -euo pipefail
SIZE_MIB=${SIZE_MIB:-1024}
IMAGES=${IMAGES:-20}
. "$(dirname "$0")/bench-common.sh"
bench_start build docker-registry skopeo zstd python3
# skopeo keeps a blob-info cache under $HOME; keep it (and any default bundle cache) in $WORK.
SKOPEO=(env HOME="$WORK/home" skopeo --insecure-policy)

start_registry registry; HOST=$REGISTRY

echo "generating $IMAGES images of about $SIZE_MIB MiB in total in $WORK ..."
python3 scripts/gen-bench-images.py "$WORK/layout" "$SIZE_MIB" "$IMAGES"

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

BUILD=("$BIN" -q build --images "$WORK/images.toml" --lock "$WORK/manifests.lock" --locked --cache "$WORK/cache")
# skopeo sync has no --quiet in 1.9: its progress goes to a log, shown if it fails.
PIPELINE="{ env HOME='$WORK/home' skopeo --insecure-policy sync --all --src yaml --dest dir \
  '$WORK/sync.yaml' '$WORK/sync' > '$WORK/sync.log' 2>&1 || { cat '$WORK/sync.log'; exit 1; }; } \
  && tar -cf - -C '$WORK/sync' . | zstd -T0 -3 -q -f -o '$WORK/ref.tar.zst'"

RUNS=${RUNS:-3}
OUR_RSS=0; OUR_COLDS=(); REF_COLDS=(); OUR_WARMS=(); REF_WARMS=()
# Each side removes its previous output (and bundle its cache, when cold) just before it runs.
ours() { # run, kind (cold or warm)
  if [ "$2" = cold ]; then rm -rf "$WORK/cache"; fi
  rm -f "$WORK/$2.tar.zst"
  measure "bundle build ($2 cache, run $1)" "${BUILD[@]}" -o "$WORK/$2.tar.zst"
  keep_peak OUR_RSS
}
theirs() { # run
  rm -rf "$WORK/sync" "$WORK/ref.tar.zst"
  measure "skopeo sync + tar | zstd -T0 -3 (run $1)" sh -c "$PIPELINE"
}
cold_ours() { ours "$1" cold; OUR_COLDS+=("$SECS"); }
cold_theirs() { theirs "$1"; REF_COLDS+=("$SECS"); }
warm_ours() { ours "$1" warm; OUR_WARMS+=("$SECS"); }
warm_theirs() { theirs "$1"; REF_WARMS+=("$SECS"); }
echo "cold (bundle with an empty cache; skopeo always fetches everything), $RUNS alternating runs:"
alternate_runs cold_ours cold_theirs
echo "warm (bundle with the cache filled), $RUNS alternating runs:"
alternate_runs warm_ours warm_theirs
OUR_COLD=$(median "${OUR_COLDS[@]}"); REF_COLD=$(median "${REF_COLDS[@]}")
OUR_WARM=$(median "${OUR_WARMS[@]}"); REF_WARM=$(median "${REF_WARMS[@]}")
echo "medians: cold $OUR_COLD s vs $REF_COLD s, warm $OUR_WARM s vs $REF_WARM s"
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
print(f"cold build speed vs skopeo sync + tar|zstd: {cold:6.2f}x  (target >= 4.00x) {verdict(cold >= 4)}")
print(f"warm build speed vs skopeo sync + tar|zstd: {warm:6.2f}x  (target >= 15.00x) {verdict(warm >= 15)}")
print(f"bundle size vs skopeo pipeline's output:    {size:6.3f}   (target <= 1.000) {verdict(size <= 1)}")
print(f"peak memory of bundle build:            {peak:7.1f} MiB (target < 128 MiB) {verdict(peak < 128)}")
PY
