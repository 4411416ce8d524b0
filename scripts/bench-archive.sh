#!/usr/bin/env bash
# Benchmark of the bundle container against the standard pipeline, in one run:
#   pack:   bundle pack DIR          vs  tar -cf - DIR | zstd -T0 -3
#   verify: bundle verify B --key K  vs  zstd -d < B | tar x && sha256sum -c SHA256SUMS
#           (and, for comparison only, bundle verify --content)
# on SIZE_MIB (default 2048) of mixed content: half compressible text, half gzip blobs.
# Prints medians of RUNS (default 5) alternating runs, ratios and our peak memory. Targets:
# pack >= 1.2x tar|zstd -T0 -3 with a bundle at most 2% larger, verify >= 10x the
# extract-and-sha256sum pipeline, peak memory < 64 MiB.
# Decrypting a minisign secret key costs a fixed ~1 GiB and a few seconds (scrypt N=2^20, the
# minisign format's default); it is reported on its own line, apart from the packing itself.
set -euo pipefail
SIZE_MIB=${SIZE_MIB:-2048}
. "$(dirname "$0")/bench-common.sh"
bench_start archive zstd tar sha256sum python3
echo "generating ${SIZE_MIB} MiB of mixed content in $WORK ..."
python3 scripts/gen-mixed-content.py "$WORK/in" "$SIZE_MIB"
export BUNDLE_KEY_PASSPHRASE=bench
"$BIN" -q keygen -o "$WORK/k"
# Warm the page cache for both sides alike.
cat $(find "$WORK/in" -type f) > /dev/null

RUNS=${RUNS:-5}

# Each side removes its previous output just before it runs (see `alternate`).
pack_ref() {
  rm -f "$WORK/ref.tar.zst"
  measure "tar | zstd -T0 -3   (run $1)" sh -c "tar -cf - -C '$WORK/in' . | zstd -T0 -3 -q -f -o '$WORK/ref.tar.zst'"
  REF_RUNS+=("$SECS")
  REF_SIZE=$(stat -c %s "$WORK/ref.tar.zst")
}
pack_ours() {
  rm -f "$WORK/b.tar.zst"
  measure "bundle pack         (run $1)" "$BIN" -q pack "$WORK/in" -o "$WORK/b.tar.zst"
  OUR_RUNS+=("$SECS")
  keep_peak PACK_RSS
}
echo "pack ($RUNS alternating runs each, the median counts; this machine's timing is noisy):"
REF_RUNS=(); OUR_RUNS=(); PACK_RSS=0
alternate_runs pack_ref pack_ours
REF_PACK=$(median "${REF_RUNS[@]}"); OUR_PACK=$(median "${OUR_RUNS[@]}")
echo "  median: tar|zstd ${REF_PACK} s, bundle pack ${OUR_PACK} s"
OUR_SIZE=$(stat -c %s "$WORK/b.tar.zst")
echo "signing (fixed costs, independent of the bundle's size):"
mkdir "$WORK/empty"
measure "key decryption (pack of nothing)" "$BIN" -q pack "$WORK/empty" -o "$WORK/e.tar.zst" --sign-key "$WORK/k.key"
measure "bundle sign (checks, then appends)" "$BIN" -q sign "$WORK/b.tar.zst" --key "$WORK/k.key"

# The pipeline's extracted copy is removed right after its run, so the next run (either side)
# starts after that clean-up, not during it.
verify_ref() {
  mkdir "$WORK/x"
  measure "zstd -d | tar x && sha256sum -c (run $1)" sh -c "zstd -dc '$WORK/b.tar.zst' | tar -xf - -C '$WORK/x' && cd '$WORK/x' && sha256sum --quiet -c SHA256SUMS"
  REF_VRUNS+=("$SECS")
  rm -rf "$WORK/x"
}
# Ours: the default check (by stored runs), then, for comparison only, `--content` (every
# member decompressed and hashed, format v1's only check).
verify_ours() {
  measure "bundle verify      (run $1)" "$BIN" -q verify "$WORK/b.tar.zst" --key "$WORK/k.pub"
  OUR_VRUNS+=("$SECS")
  keep_peak VERIFY_RSS
  measure "bundle verify --content (run $1)" "$BIN" -q verify "$WORK/b.tar.zst" --key "$WORK/k.pub" --content
  CONTENT_RUNS+=("$SECS")
  keep_peak VERIFY_RSS
}
echo "verify ($RUNS alternating runs each, the median counts):"
REF_VRUNS=(); OUR_VRUNS=(); CONTENT_RUNS=(); VERIFY_RSS=0
alternate_runs verify_ref verify_ours
REF_VERIFY=$(median "${REF_VRUNS[@]}"); OUR_VERIFY=$(median "${OUR_VRUNS[@]}")
echo "  median: extract + sha256sum ${REF_VERIFY} s, bundle verify ${OUR_VERIFY} s"
OUR_CONTENT=$(median "${CONTENT_RUNS[@]}")
echo "  median: bundle verify --content ${OUR_CONTENT} s ($(python3 -c "print(f'{$REF_VERIFY / $OUR_CONTENT:.2f}')")x the pipeline)"

echo "sizes: tar|zstd ${REF_SIZE} bytes, bundle ${OUR_SIZE} bytes"
python3 - "$REF_PACK" "$OUR_PACK" "$REF_VERIFY" "$OUR_VERIFY" "$PACK_RSS" "$VERIFY_RSS" "$REF_SIZE" "$OUR_SIZE" <<'PY'
import sys
rp, op, rv, ov, prss, vrss, rs, os_ = map(float, sys.argv[1:])
pack_ratio = rp / op
verify_ratio = rv / ov
peak = max(prss, vrss) / 1024
print(f"pack speed vs tar|zstd -T0:            {pack_ratio:.2f}x  (target >= 1.20x) {'OK' if pack_ratio >= 1.2 else 'MISSED'}")
print(f"verify speed vs extract+sha256sum -c:  {verify_ratio:.2f}x  (target >= 10.00x) {'OK' if verify_ratio >= 10 else 'MISSED'}")
print(f"peak memory (pack {prss/1024:.1f} MiB, verify {vrss/1024:.1f} MiB): {peak:.1f} MiB (target < 64 MiB) {'OK' if peak < 64 else 'MISSED'}")
print(f"size vs tar|zstd:                      {os_/rs:.3f}  (target <= 1.020) {'OK' if os_ / rs <= 1.02 else 'MISSED'}")
PY
